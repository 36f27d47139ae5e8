"""The controller's optional parts, chosen from ``airlock controller``'s flags.

Each plugin receives the :class:`~airlock.controller.runner.Controller` and registers its
handlers on the controller's kopf registry; work that only the active replica may do asks
``controller.is_leading``.
"""

from __future__ import annotations

import argparse

from airlock.controller.certs import cert_settings_from_args, register_certs
from airlock.controller.compliance import register_compliance
from airlock.controller.runner import Controller, Plugin
from airlock.controller.settings import ControllerSettings

__all__ = ["from_args"]


def from_args(args: argparse.Namespace, settings: ControllerSettings) -> list[Plugin]:
    cert_settings = cert_settings_from_args(args, namespace=settings.namespace)

    def certificates(c: Controller) -> None:
        register_certs(
            c.registry,
            cert_settings,
            kube=c.kube,
            leading=None if c.settings.standalone else c.is_leading,
        )

    def compliance(c: Controller) -> None:
        register_compliance(
            c.registry,
            c.settings,
            kube=c.kube,
            leading=None if c.settings.standalone else c.is_leading,
            owner=lambda: c.owner_reference,
        )

    return [certificates, compliance]
