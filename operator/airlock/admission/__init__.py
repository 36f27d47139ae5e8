"""Airlock's admission layer: AdmissionReview v1 over HTTPS, in front of the engine.

The server (:func:`run_webhook`, :class:`WebhookServer`) moves bytes; the handler
(:func:`handle_validate`, :func:`handle_mutate`) decides; the :class:`StateStore` holds what the
watches know about the cluster. ``airlock webhook`` wires the three together with
:class:`WebhookSettings`.
"""

from __future__ import annotations

from .exceptions import FOUR_EYES_MESSAGE, check_exception, exception_patch
from .handler import handle_mutate, handle_validate
from .server import WebhookServer, run_webhook
from .settings import (
    AdmissionSettings,
    MetricsSettings,
    ServerSettings,
    TLSSettings,
    WebhookSettings,
)
from .store import StateStore
from .webhookconfig import render_webhook_configurations, to_yaml, write_webhook_configurations

__all__ = [
    "FOUR_EYES_MESSAGE",
    "AdmissionSettings",
    "MetricsSettings",
    "ServerSettings",
    "StateStore",
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
