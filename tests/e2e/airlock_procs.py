"""Run Airlock the way `make demo` does, for the admission e2e tests and the API-server benchmark.

``airlock webhook`` and ``airlock controller`` run as subprocesses (the console script of this
venv) on free loopback ports, with their logs in a directory the caller chooses. The webhook is
registered with the API server through the Validating/MutatingWebhookConfigurations that
``airlock webhook-config --url https://127.0.0.1:PORT --ca-file CA`` renders, under a name of our
own so a run never touches another install's configurations.

Everything here is bounded in time and stops only the processes it started (by their pid).
A plain module (not a conftest) so tests and ``bench/`` can both import it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

__all__ = [
    "AIRLOCK_BIN",
    "Airlock",
    "AirlockProcess",
    "AirlockStartError",
    "free_port",
    "metric_value",
    "poll_until",
]

AIRLOCK_BIN = Path(sys.executable).parent / "airlock"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
REGISTER_TIMEOUT_S = 30.0
TAIL_LINES = 40

T = TypeVar("T")


class AirlockStartError(RuntimeError):
    """A process did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(fetch: Callable[[], T | None], what: str, timeout: float, step: float = 0.2) -> T:
    """``fetch()`` until it returns something other than None; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def metric_value(exposition: str, name: str, labels: dict[str, str]) -> float:
    """The sample of ``name`` whose labels include ``labels`` (0.0 when there is none).

    Label values in our metrics never hold quotes or commas (see airlock.metrics), so a plain
    split is enough here.
    """
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        body = head[len(name) + 1 : head.rindex("}")]
        have = {k: v.strip('"') for k, _, v in (item.partition("=") for item in body.split(","))}
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def _clean_env() -> dict[str, str]:
    # a developer's AIRLOCK_WEBHOOK_* / AIRLOCK_CONTROLLER_* must not change what runs here
    drop = ("AIRLOCK_WEBHOOK_", "AIRLOCK_CONTROLLER_", "KUBECONFIG")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@dataclass
class AirlockProcess:
    """One subprocess with its log file; stop() is SIGTERM, then SIGKILL after a grace period."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.alive():
            return
        with self.log.open("ab") as out:
            out.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=_clean_env()
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Stop it (if running) and return its exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        return proc.returncode

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"({self.log} is missing)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Airlock:
    """A webhook and (optionally) a controller for one cluster, plus their registration.

    ``tag`` makes the configuration and peering names unique, so parallel sessions against
    different clusters, or other test modules on the same one, never collide.
    """

    api: client.ApiClient
    kubeconfig: Path
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    workdir: Path
    policy_name: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    controller_metrics_port: int = field(default_factory=free_port)
    controller_liveness_port: int = field(default_factory=free_port)
    with_controller: bool = True
    webhook_args: tuple[str, ...] = ()  # more flags for `airlock webhook`
    webhook: AirlockProcess = field(init=False)
    controller: AirlockProcess = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.webhook = AirlockProcess(
            "webhook",
            [
                str(AIRLOCK_BIN),
                "webhook",
                "--kubeconfig",
                str(self.kubeconfig),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(self.metrics_port),
                "--tls-cert-file",
                str(self.serving_cert),
                "--tls-key-file",
                str(self.serving_key),
                "--policy-name",
                self.policy_name,
                # nothing here pools connections to it; tests stop it often
                "--drain-seconds",
                "0",
                *self.webhook_args,
            ],
            self.workdir / "webhook.log",
        )
        self.controller = AirlockProcess(
            "controller",
            [
                str(AIRLOCK_BIN),
                "controller",
                "--kubeconfig",
                str(self.kubeconfig),
                "--namespace",
                "default",
                "--policy-name",
                self.policy_name,
                "--peering-name",
                self.peering_name,
                "--identity",
                f"e2e-admission-{self.tag}",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(self.controller_metrics_port),
                "--liveness-endpoint",
                f"http://127.0.0.1:{self.controller_liveness_port}/healthz",
                "--certificates",
                "external",
            ],
            self.workdir / "controller.log",
        )

    # -- names ------------------------------------------------------------------------------------

    @property
    def config_name(self) -> str:
        """Name of both webhook configurations (Validating and Mutating)."""
        return f"airlock-e2e-{self.tag}"

    @property
    def peering_name(self) -> str:
        return f"airlock-e2e-{self.tag}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # -- processes --------------------------------------------------------------------------------

    def start_webhook(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the webhook and wait until /readyz says its initial listings are loaded."""
        self.webhook.start()
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))

        def ready() -> bool | None:
            if not self.webhook.alive():
                raise AirlockStartError(f"the webhook exited:\n{self.webhook.tail()}")
            url = f"{self.url}/readyz"
            try:
                with urllib.request.urlopen(url, context=ctx, timeout=2) as r:  # noqa: S310 - https
                    return True if r.status == 200 else None
            except (OSError, urllib.error.HTTPError):
                return None

        try:
            poll_until(ready, "the webhook's /readyz", timeout)
        except TimeoutError as exc:
            raise AirlockStartError(f"{exc}\n{self.webhook.tail()}") from None

    def stop_webhook(self) -> int | None:
        return self.webhook.stop()

    def start_controller(self, timeout: float = READY_TIMEOUT_S) -> None:
        self.controller.start()

        def alive() -> bool | None:
            if not self.controller.alive():
                raise AirlockStartError(f"the controller exited:\n{self.controller.tail()}")
            try:
                url = f"http://127.0.0.1:{self.controller_liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as r:
                    return True if r.status == 200 else None
            except OSError:
                return None

        try:
            poll_until(alive, "the controller's liveness endpoint", timeout)
        except TimeoutError as exc:
            raise AirlockStartError(f"{exc}\n{self.controller.tail()}") from None

    def start(self) -> None:
        """Webhook (ready) and, if wanted, the controller (live); not yet registered."""
        self.start_webhook()
        if self.with_controller:
            self.start_controller()

    def stop(self) -> None:
        """Unregister, stop both processes, delete the peering object: safe to call twice."""
        errors: list[BaseException] = []
        for step in (self.unregister, self.webhook.stop, self.controller.stop, self._unpeer):
            try:
                step()
            except (ApiException, OSError, subprocess.SubprocessError) as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _unpeer(self) -> None:
        if not self.with_controller:
            return
        custom = client.CustomObjectsApi(self.api)
        with contextlib.suppress(ApiException):
            custom.delete_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", self.peering_name
            )

    def tails(self, lines: int = TAIL_LINES) -> str:
        """The last lines of every log, for a failure report."""
        out = []
        for proc in (self.webhook, self.controller):
            if proc.process is None:
                continue
            out.append(f"--- airlock {proc.name} ({proc.log}) ---\n{proc.tail(lines)}")
        return "\n".join(out)

    # -- metrics ----------------------------------------------------------------------------------

    def webhook_metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    # -- registration -----------------------------------------------------------------------------

    def render_configurations(self) -> list[dict[str, Any]]:
        """What ``airlock webhook-config`` prints for this webhook, as objects."""
        out = subprocess.run(
            [
                str(AIRLOCK_BIN),
                "webhook-config",
                "--url",
                self.url,
                "--ca-file",
                str(self.ca_cert),
                "--name",
                self.config_name,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env=_clean_env(),
        ).stdout
        (self.workdir / "webhook-configurations.yaml").write_text(out)
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def register(self) -> None:
        """Create (or replace) both configurations. The API server applies them asynchronously:
        callers that need them in force wait with a probe (see :meth:`wait_until`)."""
        adm = client.AdmissionregistrationV1Api(self.api)
        for doc in self.render_configurations():
            name = doc["metadata"]["name"]
            if doc["kind"] == "ValidatingWebhookConfiguration":
                create, read, replace = (
                    adm.create_validating_webhook_configuration,
                    adm.read_validating_webhook_configuration,
                    adm.replace_validating_webhook_configuration,
                )
            else:
                create, read, replace = (
                    adm.create_mutating_webhook_configuration,
                    adm.read_mutating_webhook_configuration,
                    adm.replace_mutating_webhook_configuration,
                )
            try:
                create(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                doc["metadata"]["resourceVersion"] = read(name).metadata.resource_version
                replace(name, doc)

    def unregister(self) -> None:
        adm = client.AdmissionregistrationV1Api(self.api)
        for delete in (
            adm.delete_validating_webhook_configuration,
            adm.delete_mutating_webhook_configuration,
        ):
            try:
                delete(self.config_name)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    @staticmethod
    def wait_until(
        probe: Callable[[], bool], what: str, timeout: float = REGISTER_TIMEOUT_S
    ) -> None:
        """Poll ``probe`` until it is true (for instance: a dry-run that must now be denied)."""
        poll_until(lambda: True if probe() else None, what, timeout, step=0.25)
