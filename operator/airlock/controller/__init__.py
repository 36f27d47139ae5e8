"""kopf-side Airlock: the webhook's read-only watches and ``airlock controller``.

* :func:`run_watchers` keeps the webhook's :class:`~airlock.admission.store.StateStore` current
  (standalone kopf, ``on.event`` and ``index`` handlers only: it writes nothing to the cluster).
* :func:`run_controller` is ``airlock controller``: BaselinePolicy status and the PolicyException
  lifecycle (status, expiry, metrics), one active replica through kopf peering.
* :func:`policy_status` and :func:`exception_status` are the pure status computations.
"""

from airlock.controller.exceptions import exception_status, time_left
from airlock.controller.policy import policy_status
from airlock.controller.runner import run_controller
from airlock.controller.settings import ControllerSettings
from airlock.controller.watch import build_watch_registry, run_watchers

__all__ = [
    "ControllerSettings",
    "build_watch_registry",
    "exception_status",
    "policy_status",
    "run_controller",
    "run_watchers",
    "time_left",
]
