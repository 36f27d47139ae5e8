"""Airlock's admission layer: AdmissionReview v1 over HTTPS, in front of the engine.

The server (:func:`run_webhook`, :class:`WebhookServer`) moves bytes; the handlers
(:func:`handle_validate`, :func:`handle_mutate`, both a :class:`.handler.Handler`) decide, each
answer one :class:`.handler.Decision`; the :class:`StateStore` holds what the watches know about
the cluster. The four-eyes rules of PolicyExceptions are in :mod:`.policy_exceptions`.
``airlock webhook`` (:mod:`airlock.webhook_process`) wires them together with
:class:`WebhookSettings`.
"""

from __future__ import annotations

from .handler import handle_mutate, handle_validate
from .policy_exceptions import FOUR_EYES_MESSAGE, check_exception, exception_patch
from .server import WebhookServer, run_webhook
from .settings import (
    AdmissionSettings,
    MetricsSettings,
    RegistrySettings,
    ServerSettings,
    TLSSettings,
    WebhookSettings,
)
from .store import StateStore
from .supply import ImageFacts, PullSecrets, SupplyChain
from .webhookconfig import render_webhook_configurations, to_yaml, write_webhook_configurations

__all__ = [
    "FOUR_EYES_MESSAGE",
    "AdmissionSettings",
    "ImageFacts",
    "MetricsSettings",
    "PullSecrets",
    "RegistrySettings",
    "ServerSettings",
    "StateStore",
    "SupplyChain",
    "TLSSettings",
    "WebhookServer",
    "WebhookSettings",
    "check_exception",
    "exception_patch",
    "handle_mutate",
    "handle_validate",
    "render_webhook_configurations",
    "run_webhook",
    "to_yaml",
    "write_webhook_configurations",
]
