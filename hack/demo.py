"""`make demo`: Airlock enforcing a three-environment baseline on a real local cluster.

The way cluster admins run it, where this machine allows (root, cgroups): builds Airlock's image
(`make image`), brings up the local control plane with a real node (containerd, kubelet,
kube-scheduler, kube-proxy), imports the image into the node, installs Airlock with Helm by
digest, then applies the example workloads with kubectl and says what Airlock did to each.

Where no node can run, it says why and falls back to Airlock as host processes: `airlock
webhook` and `airlock controller` in the background beside a node-less control plane, with the
webhook configurations in URL form. `python hack/demo.py down` stops everything either way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))

import localcluster  # noqa: E402
import localnode  # noqa: E402

DEMO = ROOT / ".local" / "demo"
CLUSTER = ROOT / ".local" / "cluster"
AIRLOCK = Path(sys.executable).parent / "airlock"
NAMESPACES = {"ml-dev": "dev", "ml-staging": "staging", "ml-prod": "prod"}
EXAMPLES = ROOT / "manifests" / "examples" / "workloads"

BOLD, RED, YELLOW, BLUE, GREEN, DIM, RESET = (
    ("\033[1m", "\033[31m", "\033[33m", "\033[34m", "\033[32m", "\033[2m", "\033[0m")
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    else ("",) * 7
)


def say(msg: str) -> None:
    print(f"{BOLD}==>{RESET} {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    kubectl: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise SystemExit(f"demo: kubectl {' '.join(args)} failed:\n{proc.stderr.strip()}")
        return proc


def start(name: str, argv: list[str]) -> int:
    log = (DEMO / f"{name}.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def wait_alive(
    url: str, pid: int, log: Path, ca: Path | None = None, timeout: float = 60.0
) -> None:
    """Until ``url`` answers 200 (https with ``ca``); fail loudly, with the log, if the process
    exits first."""
    ctx = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_running({log.stem: pid})
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=2) as r:  # noqa: S310 - ours
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"demo: {url} did not answer in {timeout:.0f}s; see {log}")


def check_running(pids: dict[str, int]) -> None:
    """Every process the demo started must still run: a demo that reports success over a
    dead controller lies."""
    for name, pid in pids.items():
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0
        try:
            os.kill(pid, 0)
            alive = done == 0
        except ProcessLookupError:
            alive = False
        if not alive:
            log = DEMO / f"{name}.log"
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise SystemExit(f"demo: airlock {name} (pid {pid}) exited; see {log}:\n{tail}")


def stop_pids() -> None:
    pids_file = DEMO / "pids.json"
    if not pids_file.exists():
        return
    for name, pid in json.loads(pids_file.read_text()).items():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        print(f"stopped {name} (pid {pid})")
    pids_file.unlink()


def outcome(proc: subprocess.CompletedProcess[str]) -> tuple[str, list[str]]:
    """What Airlock did, from kubectl's exit code, its error and its `Warning:` lines."""
    warnings = [
        ln.removeprefix("Warning: ")
        for ln in proc.stderr.splitlines()
        if ln.startswith("Warning: ")
    ]
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        body = [ln for ln in err if not ln.startswith("Warning: ")]
        return f"{RED}DENIED{RESET}", body
    patched = [w for w in warnings if w.startswith("airlock set") or w.startswith("airlock pinned")]
    if patched:
        return f"{BLUE}PATCHED{RESET}", warnings
    if warnings:
        return f"{YELLOW}WARNED{RESET}", warnings
    return f"{GREEN}ADMITTED{RESET}", [proc.stdout.strip()]


def up(*, host_processes: bool = False) -> int:
    DEMO.mkdir(parents=True, exist_ok=True)
    stop_pids()
    if host_processes:
        say("Airlock as host processes beside a node-less control plane (--host-processes)")
        return up_host()
    reason = localnode.unavailable_reason()
    if reason is None:
        return up_node()
    say(f"no real node on this machine ({reason}): Airlock runs as host processes instead")
    return up_host()


def apply_workloads(k: Env) -> None:
    say("applying the example workloads with kubectl\n")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        about = " ".join(
            ln.lstrip("# ") for ln in path.read_text().splitlines() if ln.startswith("#")
        )
        proc = k.run("apply", "-f", str(path), check=False)
        verdict, lines = outcome(proc)
        print(f"{BOLD}{path.relative_to(ROOT)}{RESET}\n  {DIM}{about}{RESET}\n  {verdict}")
        for ln in lines[:12]:
            print(f"    {ln}")
        if len(lines) > 12:
            print(f"    … {len(lines) - 12} more lines")
        print()


def namespaces_and_ai_crds(k: Env) -> None:
    say("test-only CRDs of the AI kinds (PyTorchJob, InferenceService, …)")
    k.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(ROOT / "manifests" / "testing" / "ai-crds.yaml"),
    )
    k.run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    say(
        "namespaces ml-dev (warn), ml-staging (enforce), ml-prod (enforce, prod registry + digests)"
    )
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"airlock.dev/environment": env}},
        }
        for ns, env in NAMESPACES.items()
    ]
    k.run("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


def wait_for_denial(k: Env) -> None:
    """The API server picks new webhook configurations up asynchronously: probe until it denies."""
    probe = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "airlock-probe", "namespace": "ml-prod"},
            "spec": {
                "containers": [
                    {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}
                ]
            },
        }
    )
    for _ in range(120):
        proc = k.run("apply", "--dry-run=server", "-f", "-", stdin=probe, check=False)
        # Airlock's own denial, not "connection refused" while kube-proxy routes the Service
        if proc.returncode != 0 and "denied the request" in proc.stderr:
            return
        time.sleep(0.5)
    raise SystemExit("demo: Airlock did not start denying within a minute")


def up_node() -> int:
    began = time.monotonic()
    say("building Airlock's image without Docker (make image; cached after the first time)")
    built = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-image.sh"), "airlock"],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    if built.returncode != 0:
        raise SystemExit("demo: hack/build-image.sh failed (see above)")
    digest = (ROOT / ".local" / "image" / "airlock.digest").read_text().strip()
    archive = ROOT / ".local" / "image" / "airlock.oci.tar"
    print(f"    {archive.relative_to(ROOT)}  {digest}")

    say("local control plane and a real node (containerd, kubelet, kube-scheduler, kube-proxy)")
    cluster = localcluster.start(CLUSTER, node=True)
    print(f"    {cluster.server} ({'reused' if cluster.reused else 'started'})")
    k = Env(cluster.bin_dir / "kubectl", cluster.kubeconfig)
    names = localnode.import_image(CLUSTER, archive)
    repository = names[0].rsplit(":", 1)[0]
    print(f"    image imported into the node's containerd: {names[0]}@{digest}")
    namespaces_and_ai_crds(k)

    policy = yaml.safe_load((ROOT / "manifests" / "examples" / "policy-default.yaml").read_text())
    spec = dict(policy["spec"])
    # the chart keeps one list for the webhooks and the policy, plus its own namespace
    excluded = [ns for ns in spec.pop("excludedNamespaces", []) if ns != "airlock-system"]
    values = {
        "image": {"repository": repository, "digest": digest},
        "excludedNamespaces": excluded,
        "policy": {"spec": spec},
    }
    values_file = DEMO / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    say(
        "helm install airlock charts/airlock --namespace airlock-system --create-namespace "
        f"-f {values_file.relative_to(ROOT)}"
    )
    helm_env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "HELM_CACHE_HOME": str(DEMO / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(DEMO / "helm" / "config"),
        "HELM_DATA_HOME": str(DEMO / "helm" / "data"),
    }
    helm = [str(cluster.bin_dir / "helm")]
    subprocess.run(
        [*helm, "uninstall", "airlock", "-n", "airlock-system"],
        env=helm_env,
        capture_output=True,
        check=False,
    )
    installed = subprocess.run(
        [
            *helm,
            "install",
            "airlock",
            str(ROOT / "charts" / "airlock"),
            "--namespace",
            "airlock-system",
            "--create-namespace",
            "-f",
            str(values_file),
        ],
        env=helm_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        raise SystemExit(f"demo: helm install failed:\n{installed.stderr.strip()}")
    t = time.monotonic()
    for deployment in ("airlock-webhook", "airlock-controller"):
        proc = k.run(
            "rollout",
            "status",
            "-n",
            "airlock-system",
            f"deployment/{deployment}",
            "--timeout=180s",
            check=False,
        )
        if proc.returncode != 0:
            pods = k.run("get", "pods", "-n", "airlock-system", "-o", "wide", check=False).stdout
            raise SystemExit(f"demo: {deployment} did not become ready:\n{proc.stderr}\n{pods}")
    print(f"    webhook (2 replicas) and controller Ready in {time.monotonic() - t:.0f} s:")
    for line in k.run("get", "pods", "-n", "airlock-system", "-o", "wide").stdout.splitlines():
        print(f"      {line}")
    wait_for_denial(k)

    env_file = DEMO / "env"
    env_file.write_text(
        f"export KUBECONFIG={cluster.kubeconfig}\nexport PATH={cluster.bin_dir}:$PATH\n"
    )
    apply_workloads(k)
    say(f"done in {time.monotonic() - began:.0f} s; try it yourself")
    print(f"""    source {env_file.relative_to(ROOT)}
    kubectl get pods -n airlock-system -o wide          # Airlock's own pods on the node
    kubectl apply -f manifests/examples/workloads/03-deployment-latest.yaml
    kubectl get baselinepolicy default -o yaml          # status: Ready, observedGeneration
    kubectl get policyreports -A                        # the controller's audit results
    curl -s http://$(kubectl get pod -n airlock-system -l app.kubernetes.io/component=controller \\
      -o jsonpath='{{.items[0].status.podIP}}'):8080/metrics | grep airlock_compliance_ratio
    .venv/bin/airlock explain plaintext-secret-env
    make demo-down                                      # removes the node, the cluster, everything
""")
    return 0


def up_host() -> int:
    say("local control plane (etcd, kube-apiserver, kube-controller-manager)")
    cluster = localcluster.start(CLUSTER)
    print(f"    {cluster.server} ({'reused' if cluster.reused else 'started'})")
    k = Env(cluster.bin_dir / "kubectl", cluster.kubeconfig)

    say("CRDs: BaselinePolicy, PolicyException, kopf peering, PolicyReport")
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "manifests" / "crds"))
    namespaces_and_ai_crds(k)
    k.run("apply", "-f", str(ROOT / "manifests" / "examples" / "policy-default.yaml"))

    say("webhook serving certificate, signed by the local webhook CA")
    cert, key = localcluster.issue_serving_cert(
        cluster.webhook_ca_cert,
        cluster.webhook_ca_key,
        DEMO / "tls",
        hosts=("127.0.0.1", "localhost"),
    )
    port, wmetrics, cmetrics, liveness = free_port(), free_port(), free_port(), free_port()
    kube = str(cluster.kubeconfig)
    say(
        f"starting airlock webhook on https://127.0.0.1:{port} and airlock controller "
        f"(logs in {DEMO.relative_to(ROOT)}/)"
    )
    pids = {
        "webhook": start(
            "webhook",
            [
                str(AIRLOCK),
                "webhook",
                "--kubeconfig",
                kube,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(wmetrics),
                "--tls-cert-file",
                str(cert),
                "--tls-key-file",
                str(key),
            ],
        ),
        "controller": start(
            "controller",
            [
                str(AIRLOCK),
                "controller",
                "--kubeconfig",
                kube,
                "--namespace",
                "default",
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(cmetrics),
                "--certificates",
                "external",
                "--identity",
                "demo-controller",
                # every listener on loopback, on a free port (kopf's default is 0.0.0.0:8081)
                "--liveness-endpoint",
                f"http://127.0.0.1:{liveness}/healthz",
            ],
        ),
    }
    (DEMO / "pids.json").write_text(json.dumps(pids))
    wait_alive(
        f"https://127.0.0.1:{port}/readyz",
        pids["webhook"],
        DEMO / "webhook.log",
        ca=cluster.webhook_ca_cert,
    )
    print("    webhook ready: policy, exceptions and namespace environments loaded")
    wait_alive(f"http://127.0.0.1:{liveness}/healthz", pids["controller"], DEMO / "controller.log")
    print("    controller alive (kopf liveness endpoint answers)")

    say("registering the Validating/Mutating webhook configurations (URL + caBundle)")
    rendered = subprocess.run(
        [
            str(AIRLOCK),
            "webhook-config",
            "--url",
            f"https://127.0.0.1:{port}",
            "--ca-file",
            str(cluster.webhook_ca_cert),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (DEMO / "webhook-configurations.yaml").write_text(rendered)
    k.run("apply", "-f", str(DEMO / "webhook-configurations.yaml"))
    wait_for_denial(k)

    env_file = DEMO / "env"
    env_file.write_text(
        f"export KUBECONFIG={cluster.kubeconfig}\n"
        f"export PATH={cluster.bin_dir}:$PATH\n"
        f"export AIRLOCK_WEBHOOK_METRICS_URL=http://127.0.0.1:{wmetrics}/metrics\n"
        f"export AIRLOCK_CONTROLLER_METRICS_URL=http://127.0.0.1:{cmetrics}/metrics\n"
    )

    apply_workloads(k)
    check_running(pids)

    say("try it yourself")
    print(f"""    source {env_file.relative_to(ROOT)}
    kubectl apply -f manifests/examples/workloads/03-deployment-latest.yaml
    kubectl get baselinepolicy default -o yaml          # status: Ready, observedGeneration
    curl -s $AIRLOCK_WEBHOOK_METRICS_URL | grep airlock_admission_requests_total
    .venv/bin/airlock explain plaintext-secret-env
    make demo-down                                      # stops webhook, controller, cluster
""")
    return 0


def down() -> int:
    stop_pids()
    if CLUSTER.exists():
        for line in localcluster.stop(CLUSTER):
            print(line)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down"], nargs="?", default="up")
    parser.add_argument(
        "--host-processes",
        action="store_true",
        help="run Airlock as host processes beside a node-less control plane, even as root",
    )
    args = parser.parse_args()
    try:
        return up(host_processes=args.host_processes) if args.action == "up" else down()
    except (localcluster.ClusterError, localnode.NodeError) as err:
        raise SystemExit(f"demo: {err}") from None


if __name__ == "__main__":
    raise SystemExit(main())
