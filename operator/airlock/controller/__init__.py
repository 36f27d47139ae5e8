"""The kopf side of Airlock: the watch feeder both processes use, and ``airlock controller``.

* :func:`run_watchers` keeps the webhook's :class:`~airlock.cluster.ClusterState` (the
  :class:`~airlock.admission.store.StateStore`) current through the one watch feeder
  (:mod:`airlock.controller.watch`: standalone kopf, ``on.event`` and ``index`` handlers only, it
  writes nothing to the cluster); the controller's audit is fed by the same feeder.
* :func:`run_controller` is ``airlock controller``: BaselinePolicy status, the PolicyException
  lifecycle (status, expiry, metrics), and through its plugins the webhook certificates and the
  compliance side (audit, PolicyReports, isolation); one active replica through kopf peering.
  Every call it makes to the API server goes through :class:`~airlock.controller.kube.Kube`.
* :func:`policy_status` and :func:`exception_status` are the pure status computations.

Inside, the modules are layered (an import-linter contract in pyproject.toml): ``plugins`` over
``runner``, ``compliance`` and ``certs``, over the feeder and the writers, over the pure audit
and policy state, over ``kube``.
"""

from airlock.controller.policy import policy_status
from airlock.controller.policy_exceptions import exception_status, time_left
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
