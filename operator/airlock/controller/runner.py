"""``airlock controller``: the process. Builds the registry, runs kopf and the lifecycle task.

    python -m airlock.controller --kubeconfig ~/.kube/config --policy-name default

One active replica: kopf peering (a ``ClusterKopfPeering``, see manifests/crds/kopf-peering.yaml)
pauses every replica but the one with the highest priority; replicas draw distinct random
priorities unless told otherwise (kopf pauses *all* operators that share a priority).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import kopf
from aiohttp import web
from kubernetes import client

from airlock.controller._operator import run_operator
from airlock.controller.kube import CRD_VERSION, Kube, load_configuration, register_login
from airlock.controller.policy import PolicyCache, register_policy_handlers
from airlock.controller.policy_exceptions import (
    ExceptionLifecycle,
    StatusWriteError,
    register_exception_handlers,
)
from airlock.controller.settings import (
    ControllerSettings,
    add_arguments,
    controller_kopf_settings,
    settings_from_args,
)
from airlock.errors import AirlockError, KubeError
from airlock.metrics_http import start_metrics_server
from airlock.model import API_GROUP

__all__ = [
    "Controller",
    "Plugin",
    "build_controller_registry",
    "main",
    "peering_allows",
    "run_controller",
    "serve",
]

_log = logging.getLogger("airlock.controller")

PEERING_GROUP: Final = "kopf.dev"
PEERING_VERSION: Final = "v1"
PEERING_PLURAL: Final = "clusterkopfpeerings"
_LEADER_CACHE_SECONDS: Final = 10.0
_DEFAULT_PEER_LIFETIME: Final = 60  # kopf assumes this for peers that do not say


def peering_allows(
    peers: Mapping[str, Any], *, identity: str, priority: int, now: datetime
) -> bool:
    """Whether kopf lets this replica run, given a ``ClusterKopfPeering``'s ``status``.

    kopf's rule: pause while any other live peer has a higher priority *or the same one*. A
    peer is live until ``lastseen + lifetime``.
    """
    for peer, info in peers.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        try:
            seen = datetime.fromisoformat(str(info.get("lastseen")))
            lifetime = int(info.get("lifetime", _DEFAULT_PEER_LIFETIME))
            their_priority = int(info.get("priority", 0))
        except (TypeError, ValueError):
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        if (seen - now).total_seconds() + lifetime <= 0:
            continue  # dead: kopf cleans it up and ignores it
        if their_priority >= priority:
            return False
    return True


Plugin = Callable[["Controller"], object]
"""Registers more handlers on :attr:`Controller.registry` (certificates, the audit ...).

It receives the whole controller: ``registry``, ``kube`` (the seam to the API server, with the
controller's credentials), ``settings`` and :meth:`Controller.is_leading` for work that only
the active replica may do. Its return value is ignored.
"""


class Controller:
    """The controller's parts, wired together; :meth:`run` runs them until ``stop`` is set."""

    def __init__(self, settings: ControllerSettings, plugins: Sequence[Plugin] = ()) -> None:
        self.settings = settings
        self.priority = settings.effective_priority()
        self.identity = settings.effective_identity() or (
            f"airlock-controller@{socket.gethostname()}/{secrets.token_hex(3)}"
        )
        self.api = client.ApiClient(load_configuration(settings.kubeconfig))
        self.kube = Kube(self.api)
        """Every call the controller and its plugins make to the API server goes through it."""
        self.policy = PolicyCache(settings.policy_name)
        self.lifecycle = ExceptionLifecycle(
            self.policy,
            write_status=self._write_status,
            list_objects=self._list_exceptions,
            leading=self.is_leading,
            sweep_interval=settings.sweep_interval,
            resync_interval=settings.resync_interval,
        )
        self._leader_checked = (float("-inf"), False)
        self.owner_reference: dict[str, Any] | None = None
        """The peering object as the owner of what the controller creates in other namespaces
        (PolicyReports, isolation NetworkPolicies): the chart owns the peering object, so
        `helm uninstall` deletes it and the garbage collector then removes those. None when
        standalone (nothing owns them; they stay until deleted)."""
        self.registry = build_controller_registry(self)
        for plugin in plugins:
            plugin(self)

    # -- Kubernetes calls (through the one seam, airlock.controller.kube.Kube) -----------------

    async def _write_status(
        self, namespace: str, name: str, changes: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        kube = self.kube
        try:
            result = await kube.call(
                kube.custom.patch_namespaced_custom_object_status,
                API_GROUP,
                CRD_VERSION,
                namespace,
                "policyexceptions",
                name,
                {"status": changes},
                _content_type="application/merge-patch+json",
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise StatusWriteError(str(exc)) from None
        return result if isinstance(result, Mapping) else None

    async def _list_exceptions(self) -> Sequence[Mapping[str, Any]]:
        kube = self.kube
        try:
            listing = await kube.call(
                kube.custom.list_cluster_custom_object, API_GROUP, CRD_VERSION, "policyexceptions"
            )
        except KubeError as exc:
            raise StatusWriteError(str(exc)) from None
        items = listing.get("items") if isinstance(listing, Mapping) else None
        return [item for item in items or [] if isinstance(item, Mapping)]

    async def is_leading(self) -> bool:
        """Whether this replica is the active one (always, when standalone).

        Read from the peering object with kopf's rule, cached for a few seconds; False when it
        cannot be read, so a replica that lost the API server does not act.
        """
        if self.settings.standalone:
            return True
        try:
            return await self._leading()
        except StatusWriteError as exc:
            _log.warning("cannot read the peering state, standing by: %s", exc)
            return False

    async def _leading(self) -> bool:
        loop = asyncio.get_running_loop()
        checked_at, verdict = self._leader_checked
        if loop.time() - checked_at < _LEADER_CACHE_SECONDS:
            return verdict
        try:
            obj = await self._read_peering_object()
        except KubeError as exc:
            raise StatusWriteError(f"peering: {exc}") from None
        status = obj.get("status") if isinstance(obj, Mapping) else None
        verdict = peering_allows(
            status if isinstance(status, Mapping) else {},
            identity=self.identity,
            priority=self.priority,
            now=datetime.now(UTC),
        )
        self._leader_checked = (loop.time(), verdict)
        return verdict

    async def ensure_peering_object(self, stop: asyncio.Event) -> bool:
        """Make sure the ClusterKopfPeering exists; False if ``stop`` was set first.

        With ``create_peering`` the controller creates it when missing (kopf never does). Off
        (the chart), it waits for the object the chart creates, checking every 2 s: creating it
        here would race Helm, whose install then fails with ``already exists``.
        """
        name = self.settings.peering_name
        waiting_said = False
        while not stop.is_set():
            try:
                found = await self._read_peering_object()
                self._own_by(found)
                return True
            except KubeError as exc:
                if exc.status != 404:
                    raise AirlockError(
                        f"cannot read the ClusterKopfPeering {name!r}: {exc}"
                    ) from None
                if "clusterkopfpeerings" not in exc.body:
                    # a 404 without the resource's name: the CRD itself is missing
                    raise AirlockError(
                        "the ClusterKopfPeering CRD is not installed "
                        "(kubectl apply -f manifests/crds/kopf-peering.yaml), or run --standalone"
                    ) from None
            if self.settings.create_peering:
                self._own_by(await self._create_peering_object())
                return True
            if not waiting_said:
                _log.info("waiting for the ClusterKopfPeering %s (created by the chart)", name)
                waiting_said = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
        return False

    async def _read_peering_object(self) -> Any:
        kube = self.kube
        return await kube.call(
            kube.custom.get_cluster_custom_object,
            PEERING_GROUP,
            PEERING_VERSION,
            PEERING_PLURAL,
            self.settings.peering_name,
        )

    def _own_by(self, peering: Any) -> None:
        meta = peering.get("metadata") if isinstance(peering, Mapping) else None
        uid = meta.get("uid") if isinstance(meta, Mapping) else None
        if uid:
            self.owner_reference = {
                "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
                "kind": "ClusterKopfPeering",
                "name": self.settings.peering_name,
                "uid": str(uid),
            }

    async def _create_peering_object(self) -> Any:
        body = {
            "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": self.settings.peering_name},
        }
        kube = self.kube
        try:
            created = await kube.call(
                kube.custom.create_cluster_custom_object,
                PEERING_GROUP,
                PEERING_VERSION,
                PEERING_PLURAL,
                body,
            )
        except KubeError as exc:
            if exc.status == 409:
                return await self._read_peering_object()
            if exc.status == 404:
                raise AirlockError(
                    "the ClusterKopfPeering CRD is not installed "
                    "(kubectl apply -f manifests/crds/kopf-peering.yaml), or run --standalone"
                ) from None
            raise AirlockError(
                f"cannot create the ClusterKopfPeering {self.settings.peering_name!r}: {exc}"
            ) from None
        _log.info("created ClusterKopfPeering %s", self.settings.peering_name)
        return created

    # -- running --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        if not settings.standalone and not await self.ensure_peering_object(stop):
            return
        metrics_runner: web.AppRunner | None = None
        if settings.metrics_port:
            metrics_runner = await start_metrics_server(
                settings.metrics_host, settings.metrics_port
            )
        lifecycle = asyncio.create_task(self.lifecycle.run(stop), name="exception lifecycle")
        try:
            await run_operator(
                stop,
                lambda: self.lifecycle.stop(stop),
                registry=self.registry,
                settings=controller_kopf_settings(settings),
                standalone=settings.standalone,
                priority=self.priority,
                peering_name=None if settings.standalone else settings.peering_name,
                identity=self.identity,
                liveness_endpoint=settings.liveness_endpoint,
                clusterwide=True,
            )
        finally:
            self.lifecycle.stop(stop)
            await asyncio.gather(lifecycle, return_exceptions=True)
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            self.api.close()  # type: ignore[no-untyped-call]


def build_controller_registry(controller: Controller) -> kopf.OperatorRegistry:
    """A fresh registry with the controller's handlers (policy status, exception lifecycle)."""
    registry = kopf.OperatorRegistry()
    register_login(
        registry, controller.settings.kubeconfig, default_namespace=controller.settings.namespace
    )
    register_policy_handlers(registry, controller.policy, on_change=controller.lifecycle.wake)
    register_exception_handlers(registry, controller.lifecycle)
    return registry


async def serve(
    settings: ControllerSettings,
    stop: asyncio.Event | None = None,
    plugins: Sequence[Plugin] = (),
) -> None:
    """Run the controller in the current event loop until ``stop`` (or SIGTERM/SIGINT)."""
    await Controller(settings, plugins).run(stop if stop is not None else asyncio.Event())


def run_controller(settings: ControllerSettings, plugins: Sequence[Plugin] = ()) -> int:
    """The sync entry point of ``airlock controller``; returns the process exit code.

    SIGTERM and SIGINT stop it gracefully (once kopf is up; before that, kopf's own handling).
    """
    try:
        asyncio.run(serve(settings, plugins=plugins))
    except AirlockError as exc:
        print(f"airlock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airlock.controller",
        description="Airlock controller: BaselinePolicy status and the PolicyException lifecycle.",
    )
    add_arguments(parser)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_level != "DEBUG":
        # kopf logs every successful handler call at INFO: one line per watch event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return run_controller(settings_from_args(args))
