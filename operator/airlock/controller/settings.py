"""Settings of ``airlock controller`` and the kopf settings of both Airlock processes.

:class:`ControllerSettings` is what the CLI fills from flags and environment variables; every
field says why its default is what it is. :func:`watcher_kopf_settings` and
:func:`controller_kopf_settings` configure kopf explicitly instead of relying on its defaults,
because the two processes want opposite things: the webhook's watches must never write to the
cluster and must run on every replica, the controller writes status and runs on one.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
from dataclasses import dataclass

import kopf

__all__ = [
    "ControllerSettings",
    "add_arguments",
    "controller_kopf_settings",
    "process_identity",
    "settings_from_args",
    "watcher_kopf_settings",
]


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """Everything ``airlock controller`` needs to run."""

    kubeconfig: str | None = None
    """Path of a kubeconfig file; None means the pod's service account (then the usual
    ``$KUBECONFIG`` / ``~/.kube/config`` lookup, for running from a workstation)."""

    namespace: str = "airlock-system"
    """The controller's own namespace. kopf posts Kubernetes Events about cluster-scoped
    objects (a BaselinePolicy) here, because an Event must live in a namespace."""

    policy_name: str = "default"
    """The BaselinePolicy in force; its ``exceptions`` settings decide exception states."""

    peering_name: str = "airlock"
    """Name of the ``ClusterKopfPeering`` object replicas coordinate through. The controller
    watches cluster-wide, and kopf ties the peering scope to the operator's scope, so the
    peering object is cluster-scoped (manifests/crds/kopf-peering.yaml). The controller creates
    it when it is missing."""

    create_peering: bool = True
    """Create the peering object when it is missing. The chart turns this off: it owns the
    object (so uninstall removes it), and a controller racing Helm to create it made one
    install in three fail with ``already exists``. Off, the controller waits for it."""

    standalone: bool = False
    """Run without peering (a single replica, tests). With peering off, two replicas would both
    write status; harmless (they compute the same thing) but wasteful."""

    priority: int | None = None
    """kopf peering priority. kopf pauses *every* operator when it sees another one with the
    same priority, so replicas need distinct priorities: None draws a random one at start-up,
    which makes one replica active and the others standby."""

    identity: str | None = None
    """This replica's name in the peering object; None uses ``$POD_NAME`` (set by the chart from
    the downward API), else kopf's user@host/time identity."""

    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from other pods
    """Address of the ``/metrics`` listener."""

    metrics_port: int = 8080
    """Port of ``GET /metrics`` (``airlock_exceptions``, ``airlock_policy_info`` ...); 0 turns
    the listener off."""

    liveness_endpoint: str | None = "http://0.0.0.0:8081/healthz"
    """kopf's liveness endpoint (it answers 200 while kopf's tasks run); None turns it off."""

    sweep_interval: float = 60.0
    """Seconds between re-evaluations of every PolicyException (refreshes ``timeLeft``). Expiry
    itself does not wait for a sweep: the controller also wakes at the next ``expires``."""

    resync_interval: float = 600.0
    """Seconds between full LISTs of PolicyExceptions, which drop objects whose deletion was
    missed (for instance while this replica was standby)."""

    audit_interval: float = 300.0
    """Seconds between full audit passes over every indexed workload. Changes are re-evaluated
    within seconds anyway; the full pass catches what time alone changes (an exception
    expiring) and bounds any drift. The chart's "audit stale" alert assumes this value."""

    metrics_namespace_label: bool = True
    """Keep the ``namespace`` label on ``airlock_audit_violations``. Very large clusters (many
    thousands of namespaces) turn it off to bound the series count; violations are then summed
    per rule, environment and severity."""

    policy_reports: bool = True
    """Write one wgpolicyk8s.io PolicyReport per namespace (skipped with one log line when the
    CRD is not installed)."""

    fingerprint_key_file: str | None = None
    """File holding the installation's fingerprint key, the same Secret the webhook mounts, so
    the audit's reports give a credential the fingerprint its denial gave. None leaves them
    unkeyed (a guessed weak password could be confirmed from a report). Only the path is kept:
    the key is read at start-up and never shown."""

    def effective_priority(self) -> int:
        if self.priority is not None:
            return self.priority
        # Not a secret, only a tie-breaker between replicas.
        return random.randint(1, 2**31 - 1)  # noqa: S311

    def effective_identity(self) -> str | None:
        return self.identity or os.environ.get("POD_NAME") or None


def process_identity(component: str) -> str:
    """This process's name for kopf: ``$POD_NAME`` (the chart sets it from the downward API),
    else ``<component>@<host>/<pid>``.

    Always passed to kopf explicitly: kopf's own detection calls ``getpass.getuser()``, which
    raises in a container whose user has no passwd entry (any ``runAsUser`` the image does not
    list)."""
    return os.environ.get("POD_NAME") or f"{component}@{socket.gethostname()}/{os.getpid()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The controller's flags, for ``airlock controller`` and ``python -m airlock.controller``.

    Flags only: no setting is read from an environment variable, because the kubelet injects
    ``<SERVICE>_PORT=tcp://…`` and friends for every Service in the namespace (the chart's
    ``airlock-controller-metrics`` Service alone would set ``AIRLOCK_CONTROLLER_METRICS_PORT``).
    """
    d = ControllerSettings()

    parser.add_argument("--kubeconfig", default=d.kubeconfig)
    parser.add_argument("--namespace", default=d.namespace)
    parser.add_argument("--policy-name", default=d.policy_name)
    parser.add_argument("--peering-name", default=d.peering_name)
    parser.add_argument(
        "--no-create-peering",
        dest="create_peering",
        action="store_false",
        default=d.create_peering,
        help="wait for the ClusterKopfPeering to exist instead of creating it (the Helm chart "
        "creates it, and a controller that created it first would make the install fail)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        default=False,
    )
    parser.add_argument("--priority", type=int, default=d.priority)
    parser.add_argument("--identity", default=d.identity)
    parser.add_argument("--metrics-host", default=d.metrics_host)
    parser.add_argument("--metrics-port", type=int, default=d.metrics_port)
    parser.add_argument(
        "--liveness-endpoint",
        default=d.liveness_endpoint,
        help="kopf liveness URL, e.g. http://0.0.0.0:8081/healthz; empty turns it off",
    )
    parser.add_argument("--sweep-interval", type=float, default=d.sweep_interval)
    parser.add_argument("--resync-interval", type=float, default=d.resync_interval)
    parser.add_argument(
        "--audit-interval",
        type=float,
        default=d.audit_interval,
        help="seconds between full audit passes (300)",
    )
    parser.add_argument(
        "--no-metrics-namespace-label",
        dest="metrics_namespace_label",
        action="store_false",
        default=True,
        help="sum audit violations over namespaces (very large clusters)",
    )
    parser.add_argument(
        "--fingerprint-key-file",
        default=d.fingerprint_key_file,
        metavar="PATH",
        help="the installation's key for credential fingerprints (the chart mounts its Secret; "
        "the webhook reads the same file)",
    )
    parser.add_argument(
        "--no-policy-reports",
        dest="policy_reports",
        action="store_false",
        default=True,
        help="do not write PolicyReports",
    )


def settings_from_args(args: argparse.Namespace) -> ControllerSettings:
    return ControllerSettings(
        kubeconfig=args.kubeconfig or None,
        namespace=args.namespace,
        policy_name=args.policy_name,
        peering_name=args.peering_name,
        create_peering=bool(args.create_peering),
        standalone=bool(args.standalone),
        priority=None if args.priority in (None, "") else int(args.priority),
        identity=args.identity or None,
        metrics_host=args.metrics_host,
        metrics_port=int(args.metrics_port),
        liveness_endpoint=args.liveness_endpoint or None,
        sweep_interval=float(args.sweep_interval),
        resync_interval=float(args.resync_interval),
        audit_interval=float(args.audit_interval),
        metrics_namespace_label=bool(args.metrics_namespace_label),
        policy_reports=bool(args.policy_reports),
        fingerprint_key_file=getattr(args, "fingerprint_key_file", None) or None,
    )


def _common(settings: kopf.OperatorSettings) -> None:
    # Watches: the API server ends each watch after at most 5 minutes and kopf reconnects from
    # the last resourceVersion. A bounded stream limits how long a silently dead connection (a
    # dropped NAT entry, an API server restart behind a load balancer) can leave state stale.
    settings.watching.server_timeout = 300
    # A little over the server timeout: normally the server, not the client, ends a stream.
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # Requests other than watches (LISTs, status patches): fail within a minute, then retry with
    # kopf's backoff, instead of hanging on aiohttp's default of 5 minutes.
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Keep watching CRDs after start-up, so CRDs installed after the process (helm install order,
    # an upgrade) are picked up without a restart.
    settings.scanning.disabled = False


def watcher_kopf_settings() -> kopf.OperatorSettings:
    """kopf settings of the webhook's watches: read-only, one independent watcher per replica.

    * ``posting.enabled = False``: the webhook never creates Events (its RBAC is read-only, and
      N replicas would post N copies of every message).
    * ``peering.standalone = True``: every replica keeps its own state current; peering would
      pause all but one replica and leave the others admitting with stale state.
    * Persistence: nothing to configure, because the webhook registers only ``on.event`` and
      ``index`` handlers. kopf stores progress and diff-bases (annotations or status) and adds
      finalizers only for change handlers (create/update/resume/delete), daemons and timers,
      none of which the webhook registers (``build_watch_registry`` is checked by a unit test).
    """
    settings = kopf.OperatorSettings()
    _common(settings)
    settings.posting.enabled = False
    settings.peering.standalone = True
    settings.peering.mandatory = False
    return settings


def controller_kopf_settings(controller: ControllerSettings) -> kopf.OperatorSettings:
    """kopf settings of the controller: peering, Events on, nothing stored on objects.

    * Peering (``ClusterKopfPeering`` named :attr:`ControllerSettings.peering_name`, mandatory
      unless standalone): one active replica; the others stand by and take over when its
      keep-alive lapses (``lifetime`` 60 s).
    * ``posting.level = WARNING``: Events only for problems (an invalid policy), not one per
      status refresh; status itself is the record of routine changes.
    * Persistence: the controller's handlers are ``on.event`` and ``index`` handlers too (status
      is a pure function of the object, the active policy and the clock, so there is no progress
      to remember); kopf therefore writes no progress or diff-base annotations and no
      finalizers, and uninstalling Airlock can never leave objects that cannot be deleted.
    """
    settings = kopf.OperatorSettings()
    _common(settings)
    settings.posting.enabled = True
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "airlock-controller"
    settings.peering.name = controller.peering_name
    settings.peering.standalone = controller.standalone
    settings.peering.mandatory = not controller.standalone
    settings.peering.stealth = True  # keep-alives every ~50 s are noise in the logs
    return settings
