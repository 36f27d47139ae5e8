"""A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on loopback.

Used by `make cluster-up`/`make cluster-down` (through the command line below) and by the e2e
test fixture (by import), so the demo cluster and the test cluster are started by the same
code. Everything lives in one run directory: PKI, etcd data, kubeconfigs, logs and the pids of
the processes this module started, which is all `stop` ever signals.

    python hack/localcluster.py up   [--run-dir .local/cluster] [--node]
    python hack/localcluster.py down [--run-dir .local/cluster]
    python hack/localcluster.py status [--run-dir .local/cluster]

Without --node no kubelet, scheduler or kube-proxy runs: Pods stay Pending, Services have no
endpoints. With --node (root only) a real node joins: containerd, runc, CNI, kubelet,
kube-scheduler and kube-proxy (hack/localnode.py), and the API server listens on the node's
bridge address instead of 127.0.0.1 so pods can reach it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localnode

REPO_ROOT = Path(__file__).resolve().parent.parent
HACK = REPO_ROOT / "hack"
DEFAULT_RUN_DIR = Path(".local/cluster")
STATE_FILE = "state.json"
# Start order; stop goes in reverse so the controller manager never sees its API vanish first.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-proxy", "pause")
SERVICE_CIDR = "10.0.0.0/24"
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class ClusterError(RuntimeError):
    """The control plane could not be started, reached or stopped."""


@dataclass(frozen=True)
class Cluster:
    """A running control plane, as recorded in its run directory."""

    run_dir: Path
    server: str
    kubeconfig: Path
    env_file: Path
    ca_cert: Path
    webhook_ca_cert: Path
    webhook_ca_key: Path
    bin_dir: Path
    pids: dict[str, int] = field(default_factory=dict)
    reused: bool = False
    node: bool = False


# --------------------------------------------------------------------------- binaries


def versions() -> dict[str, str]:
    """The pinned versions, from the one file the shell and Make also read."""
    out: dict[str, str] = {}
    for raw in (HACK / "versions.env").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def bin_dir() -> Path:
    """Where build-bins.sh puts (or would put) the binaries; builds nothing."""
    result = subprocess.run(
        ["bash", str(HACK / "build-bins.sh"), "--print-dir"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(result.stdout.strip().splitlines()[-1])


def ensure_binaries() -> Path:
    """Build what is missing (instant when cached); progress goes to our stderr."""
    directory = bin_dir()
    if all((directory / n).is_file() for n in (*COMPONENTS, *NODE_BINARIES, "kubectl", "helm")):
        return directory
    result = subprocess.run(
        ["bash", str(HACK / "build-bins.sh")],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        raise ClusterError(f"hack/build-bins.sh failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- PKI


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_ca(directory: Path, stem: str, common_name: str) -> tuple[Path, Path]:
    """Create a self-signed CA; returns (cert path, key path)."""
    key = _new_key()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path


def issue_cert(
    ca_cert: Path,
    ca_key: Path,
    out_dir: Path,
    stem: str,
    common_name: str,
    *,
    org: str | None = None,
    hosts: Sequence[str] = (),
    client: bool = False,
) -> tuple[Path, Path]:
    """Sign a leaf certificate with a CA from make_ca; returns (cert path, key path).

    `hosts` become subjectAltNames (IP addresses or DNS names); a server certificate needs them,
    as Go's TLS stack ignores the common name.
    """
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    if not isinstance(signer, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ClusterError(f"unsupported CA key type in {ca_key}")
    key = _new_key()
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, org))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    if hosts:
        alt: list[x509.GeneralName] = []
        for host in hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{stem}.crt", out_dir / f"{stem}.key"
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path


def issue_serving_cert(
    ca_cert: Path,
    ca_key: Path,
    out_dir: Path,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
) -> tuple[Path, Path]:
    """A webhook serving certificate signed by the webhook CA; returns (cert, key) paths."""
    return issue_cert(ca_cert, ca_key, out_dir, "webhook-serving", hosts[0], hosts=hosts)


def _make_pki(pki: Path, *, node: bool = False) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = make_ca(pki, "ca", "airlock-local-cluster-ca")
    make_ca(pki, "webhook-ca", "airlock-local-webhook-ca")
    issue_cert(
        ca_crt,
        ca_key,
        pki,
        "apiserver",
        "kube-apiserver",
        hosts=(
            "127.0.0.1",
            *((localnode.NODE_IP,) if node else ()),
            "10.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
    )
    issue_cert(ca_crt, ca_key, pki, "admin", "admin", org="system:masters", client=True)
    # With --use-service-account-credentials=false every controller acts as this one user, and
    # the bootstrap role of system:kube-controller-manager does not cover them all.
    issue_cert(
        ca_crt,
        ca_key,
        pki,
        "controller-manager",
        "system:kube-controller-manager",
        org="system:masters",
        client=True,
    )
    if node:
        # the node's identities, each covered by Kubernetes' built-in RBAC
        clients = {
            "kubelet": (f"system:node:{localnode.NODE_NAME}", "system:nodes"),
            "kube-proxy": ("system:kube-proxy", None),
            "kube-scheduler": ("system:kube-scheduler", None),
            "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
        }
        for stem, (cn, org) in clients.items():
            issue_cert(ca_crt, ca_key, pki, stem, cn, org=org, client=True)
        issue_cert(
            ca_crt,
            ca_key,
            pki,
            "kubelet-serving",
            localnode.NODE_NAME,
            hosts=(localnode.NODE_IP, localnode.NODE_NAME),
        )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _write_kubeconfig(path: Path, server: str, pki: Path, user: str, stem: str) -> None:
    # JSON is valid YAML; the credentials are embedded so the file can be copied anywhere.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "airlock-local",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki / f"{stem}.crt"),
                    "client-key-data": _b64(pki / f"{stem}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "airlock-local",
                "context": {"cluster": "airlock-local", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "airlock-local",
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)


# --------------------------------------------------------------------------- processes


def _free_ports(count: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, kernel start time) of pid, or None if no such process entry."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def _proc_start_time(pid: int) -> int | None:
    """Kernel start time of a live pid (None if gone or a zombie): guards against pid reuse."""
    found = _proc_stat(pid)
    if found is None or found[0] in {"Z", "X"}:
        return None
    return found[1]


def _wait_gone(pid: int, start_time: int, timeout: float = 5.0) -> None:
    # A process whose parent has exited (make cluster-up's Python) stays a zombie until init
    # reaps it; wait for that so `cluster-down` really leaves no process entry behind.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        found = _proc_stat(pid)
        if found is None or found[1] != start_time:
            return
        time.sleep(0.05)


def _is_ours(pid: int, start_time: int) -> bool:
    return _proc_start_time(pid) == start_time


def _reap(pid: int) -> None:
    # Our own children become zombies until waited for; others are reaped by init.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _spawn(argv: list[str], log: Path, *, append: bool = False) -> int:
    """Start a detached process (own session, output to log) and return its pid.

    posix_spawn instead of Popen: the process must outlive this Python process when started by
    `make cluster-up`, and an abandoned Popen object warns when collected.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG"}}
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (
            os.POSIX_SPAWN_OPEN,
            1,
            str(log),
            os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC),
            0o644,
        ),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)


def _start_component(
    directory: Path, name: str, argv: list[str], *, append: bool = False
) -> tuple[int, int]:
    """Spawn one component (output to <name>.log); (pid, kernel start time) once it runs."""
    pid = _spawn(argv, directory / f"{name}.log", append=append)
    for _ in range(100):
        start_time = _proc_start_time(pid)
        if start_time is not None:
            return pid, start_time
        time.sleep(0.01)
    _reap(pid)
    raise ClusterError(f"{name} exited at once:\n{_tail(directory / (name + '.log'))}")


def _tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- state


def _state_path(run_dir: Path) -> Path:
    return run_dir / STATE_FILE


def _load_state(run_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads(_state_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save_state(run_dir: Path, state: dict[str, object]) -> None:
    tmp = _state_path(run_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(_state_path(run_dir))


def _procs(state: dict[str, object]) -> dict[str, dict[str, int]]:
    procs = state.get("procs", {})
    return procs if isinstance(procs, dict) else {}


def _cluster_from_state(run_dir: Path, state: dict[str, object], *, reused: bool) -> Cluster:
    pki = run_dir / "pki"
    return Cluster(
        run_dir=run_dir,
        server=str(state["server"]),
        kubeconfig=run_dir / "kubeconfig",
        env_file=run_dir / "env",
        ca_cert=pki / "ca.crt",
        webhook_ca_cert=pki / "webhook-ca.crt",
        webhook_ca_key=pki / "webhook-ca.key",
        bin_dir=Path(str(state["bin_dir"])),
        pids={name: p["pid"] for name, p in _procs(state).items()},
        reused=reused,
        node=bool(state.get("node")),
    )


def _resolve(run_dir: Path | str) -> Path:
    path = Path(run_dir)
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


# --------------------------------------------------------------------------- health


def _admin_ssl(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _get(server: str, path: str, ctx: ssl.SSLContext, timeout: float = 5.0) -> tuple[int, str]:
    request = urllib.request.Request(server + path)  # noqa: S310 (https to our own apiserver)
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")
        err.close()
        return int(err.code), body
    except (urllib.error.URLError, OSError):
        return 0, ""


def _healthy(run_dir: Path, state: dict[str, object]) -> bool:
    for proc in _procs(state).values():
        if not _is_ours(proc["pid"], proc["start_time"]):
            return False
    status, body = _get(str(state["server"]), "/readyz", _admin_ssl(run_dir / "pki"))
    return status == 200 and body.strip() == "ok"


def _wait_until(
    what: str,
    check: Iterator[bool],
    deadline: float,
    procs: dict[str, dict[str, int]],
    run_dir: Path,
) -> None:
    for ok in check:
        if ok:
            return
        for name, proc in procs.items():
            if not _is_ours(proc["pid"], proc["start_time"]):
                _reap(proc["pid"])
                raise ClusterError(
                    f"{name} exited while waiting for {what}; last lines of "
                    f"{run_dir / (name + '.log')}:\n{_tail(run_dir / (name + '.log'))}"
                )
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _poll(server: str, path: str, ctx: ssl.SSLContext, want_body: str | None) -> Iterator[bool]:
    while True:
        status, body = _get(server, path, ctx)
        yield status == 200 and (want_body is None or body.strip() == want_body)


# --------------------------------------------------------------------------- start / stop


def status(run_dir: Path | str = DEFAULT_RUN_DIR) -> Cluster | None:
    """The cluster recorded in run_dir if all its processes live and /readyz is ok."""
    directory = _resolve(run_dir)
    state = _load_state(directory)
    if state is None or not _healthy(directory, state):
        return None
    return _cluster_from_state(directory, state, reused=True)


def start(
    run_dir: Path | str = DEFAULT_RUN_DIR,
    *,
    binaries: Path | None = None,
    timeout: float = STARTUP_TIMEOUT_S,
    node: bool = False,
) -> Cluster:
    """Start (or find running) a control plane in run_dir and wait until it is usable.

    Usable means: /readyz is ok and the `default` ServiceAccount exists in the `default`
    namespace, which proves kube-controller-manager works too. Idempotent: a healthy cluster
    already recorded in run_dir is returned with reused=True.
    """
    directory = _resolve(run_dir)
    running = status(directory)
    if running is not None and running.node == node:
        return running
    if _load_state(directory) is not None:
        stop(directory)  # half-dead leftovers, or the other kind: clear them first
    if node:
        reason = localnode.unavailable_reason()
        if reason is not None:
            raise localnode.NodeUnavailableError(reason)
        localnode.ensure_packages()

    bins = binaries or ensure_binaries()
    for name in (*COMPONENTS, *(NODE_BINARIES if node else ())):
        if not (bins / name).is_file():
            raise ClusterError(f"{bins / name} is missing; run `make cluster-bins`")
    if node:
        with localnode.host_lock():
            holder = localnode.owner()
            if holder is not None and holder != directory:
                if status(holder) is not None:
                    raise ClusterError(
                        f"a node is already up on this machine, from {holder}; one node per "
                        "machine (host-wide ports and cgroups): stop it first "
                        f"(python hack/localcluster.py down --run-dir {holder})"
                    )
                localnode._say(f"cleaning up after an earlier node in {holder}")
                stop(holder)
            localnode.claim(directory)

    for sub in ("pki", "etcd-data", "apiserver-certs"):
        shutil.rmtree(directory / sub, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    pki = directory / "pki"
    _make_pki(pki, node=node)

    etcd_port, peer_port, api_port = _free_ports(3)
    api_host = "127.0.0.1"
    if node:
        record = localnode.snapshot()
        record.save(directory / NODE_HOST_RECORD)
        try:
            localnode.network_up(record)
            localnode.service_route(SERVICE_CIDR)
        finally:
            record.save(directory / NODE_HOST_RECORD)
        api_host = localnode.NODE_IP
    server = f"https://{api_host}:{api_port}"
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    _write_kubeconfig(directory / "kubeconfig", server, pki, "admin", "admin")
    _write_kubeconfig(
        directory / "controller-manager.kubeconfig",
        server,
        pki,
        "system:kube-controller-manager",
        "controller-manager",
    )
    node_kubeconfigs: dict[str, Path] = {}
    if node:
        for stem in ("kubelet", "kube-proxy", "kube-scheduler"):
            node_kubeconfigs[stem] = directory / f"{stem}.kubeconfig"
            _write_kubeconfig(node_kubeconfigs[stem], server, pki, stem, stem)

    argv: dict[str, list[str]] = {
        "etcd": [
            str(bins / "etcd"),
            "--name=airlock",
            f"--data-dir={directory / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=airlock={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(bins / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={api_host}",
            f"--secure-port={api_port}",
            f"--cert-dir={directory / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC" if node else "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            *(
                [
                    # the `kubernetes` Service points at the bridge address, reachable from pods
                    f"--advertise-address={api_host}",
                    "--endpoint-reconciler-type=lease",
                    "--enable-admission-plugins=NodeRestriction",
                    f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                    f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                    f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                    "--kubelet-preferred-address-types=InternalIP",
                ]
                if node
                else ["--endpoint-reconciler-type=none"]
            ),
        ],
        "kube-controller-manager": [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={directory / 'controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Without nodes these only log errors; everything else (namespaces, service
            # accounts, garbage collection, ReplicaSets, Jobs) works as in a real cluster.
            "--controllers=*,-nodeipam" if node else "--controllers=*,-nodeipam,-nodelifecycle",
            "--profiling=false",
        ],
    }

    state: dict[str, object] = {
        "server": server,
        "bin_dir": str(bins),
        "etcd": etcd_url,
        "node": node,
        "started_at": _now().isoformat(timespec="seconds"),
        "procs": {},
    }
    procs: dict[str, dict[str, int]] = {}
    state["procs"] = procs
    argvs: dict[str, list[str]] = {}
    state["argv"] = argvs  # to restart one component (failure-injection tests)
    deadline = time.monotonic() + timeout
    ctx = _admin_ssl(pki)

    def launch(name: str, command: list[str]) -> None:
        pid, start_time = _start_component(directory, name, command)
        procs[name] = {"pid": pid, "start_time": start_time}
        argvs[name] = command
        _save_state(directory, state)

    try:
        for name in COMPONENTS:
            launch(name, argv[name])
            if name == "etcd":
                _wait_until(
                    "etcd /health",
                    _poll_etcd(etcd_url),
                    deadline,
                    procs,
                    directory,
                )
            elif name == "kube-apiserver":
                _wait_until(
                    "kube-apiserver /readyz",
                    _poll(server, "/readyz", ctx, "ok"),
                    deadline,
                    procs,
                    directory,
                )
        _wait_until(
            "the default ServiceAccount (kube-controller-manager)",
            _poll(server, "/api/v1/namespaces/default/serviceaccounts/default", ctx, None),
            deadline,
            procs,
            directory,
        )
        if node:
            _start_node(directory, bins, pki, server, node_kubeconfigs, launch, procs, deadline)
    except BaseException:
        stop(directory, keep_logs=True)
        raise

    _write_env(directory, server, pki, bins)
    return _cluster_from_state(directory, state, reused=False)


NODE_HOST_RECORD = "node-host.json"


def _start_node(  # noqa: PLR0917 (one call site, all required)
    directory: Path,
    bins: Path,
    pki: Path,
    server: str,
    kubeconfigs: dict[str, Path],
    launch: Callable[[str, list[str]], None],
    procs: dict[str, dict[str, int]],
    deadline: float,
) -> None:
    """containerd (with the pause image), kubelet, kube-scheduler, kube-proxy; wait for Ready."""
    tails = localnode.write_configs(
        directory, pki=pki, service_cidr=SERVICE_CIDR, kubeconfigs=kubeconfigs
    )
    launch("containerd", [shutil.which("containerd") or "containerd", *tails["containerd"]])
    sock = localnode.containerd_socket(directory)
    _wait_until("containerd's socket", _poll_path(sock), deadline, procs, directory)
    localnode.import_image(directory, pause_image_archive())
    for name in ("kubelet", "kube-scheduler", "kube-proxy"):
        launch(name, [str(bins / name), *tails[name]])
    ctx = _admin_ssl(pki)
    _wait_until(
        f"node {localnode.NODE_NAME} Ready",
        _poll_node_ready(server, ctx),
        deadline,
        procs,
        directory,
    )


def pause_image_archive() -> Path:
    """The sandbox image, packed from the pause binary by hack/build-image.sh (cached)."""
    archive = REPO_ROOT / ".local" / "image" / "pause.oci.tar"
    if not archive.is_file():
        result = subprocess.run(
            ["bash", str(HACK / "build-image.sh"), "pause"], check=False, stdout=subprocess.PIPE
        )
        if result.returncode != 0 or not archive.is_file():
            raise ClusterError("hack/build-image.sh pause failed (see its output above)")
    return archive


def _poll_path(path: Path) -> Iterator[bool]:
    while True:
        yield path.exists()


def _poll_node_ready(server: str, ctx: ssl.SSLContext) -> Iterator[bool]:
    while True:
        status, body = _get(server, f"/api/v1/nodes/{localnode.NODE_NAME}", ctx)
        ready = False
        if status == 200:
            with contextlib.suppress(ValueError):
                conditions = json.loads(body).get("status", {}).get("conditions") or []
                ready = any(
                    c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
                )
        yield ready


def _poll_etcd(url: str) -> Iterator[bool]:
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:  # noqa: S310
                yield b'"health":"true"' in response.read()
        except (urllib.error.URLError, OSError):
            yield False


def _write_env(run_dir: Path, server: str, pki: Path, bins: Path) -> None:
    lines = [
        "# Written by hack/localcluster.py; `source` it to use the local cluster.",
        f"export KUBECONFIG='{run_dir / 'kubeconfig'}'",
        f"export AIRLOCK_API_SERVER='{server}'",
        f"export AIRLOCK_CLUSTER_CA='{pki / 'ca.crt'}'",
        f"export AIRLOCK_WEBHOOK_CA_CERT='{pki / 'webhook-ca.crt'}'",
        f"export AIRLOCK_WEBHOOK_CA_KEY='{pki / 'webhook-ca.key'}'",
        f"export AIRLOCK_BIN='{bins}'",
        'export PATH="$AIRLOCK_BIN:$PATH"',
    ]
    (run_dir / "env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def restart(run_dir: Path | str, name: str, *, timeout: float = 60.0) -> int:
    """Stop one component (SIGTERM, then SIGKILL) and start it again with the same command
    line; wait until the API server answers /readyz again. Returns the new pid. For
    failure-injection tests: an API server restart, as in a control-plane upgrade."""
    directory = _resolve(run_dir)
    state = _load_state(directory)
    if state is None:
        raise ClusterError(f"no cluster recorded in {directory}")
    procs = _procs(state)
    argvs = state.get("argv")
    if name not in procs or not isinstance(argvs, dict) or name not in argvs:
        raise ClusterError(f"{name} is not a component of the cluster in {directory}")
    proc = procs[name]
    if _is_ours(proc["pid"], proc["start_time"]):
        os.kill(proc["pid"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_ours(proc["pid"], proc["start_time"]) and time.monotonic() < deadline:
            _reap(proc["pid"])
            time.sleep(0.1)
        if _is_ours(proc["pid"], proc["start_time"]):
            os.kill(proc["pid"], signal.SIGKILL)
        _wait_gone(proc["pid"], proc["start_time"])
    pid, start_time = _start_component(directory, name, list(argvs[name]), append=True)
    procs[name] = {"pid": pid, "start_time": start_time}
    _save_state(directory, state)
    _wait_until(
        "kube-apiserver /readyz",
        _poll(str(state["server"]), "/readyz", _admin_ssl(directory / "pki"), "ok"),
        time.monotonic() + timeout,
        procs,
        directory,
    )
    return pid


def stop(run_dir: Path | str = DEFAULT_RUN_DIR, *, keep_logs: bool = True) -> list[str]:
    """Stop the processes recorded in run_dir (only those, by pid) and remove its run state.

    Returns "name (pid N)" for each process that was still running. Logs are kept (unless
    keep_logs is False) so a failed run can be read afterwards.
    """
    directory = _resolve(run_dir)
    state = _load_state(directory)
    stopped: list[str] = []
    record_path = directory / NODE_HOST_RECORD
    node = (state is not None and bool(state.get("node"))) or record_path.is_file()
    if state is not None:
        procs = _procs(state)
        for name in reversed(list(procs)):
            proc = procs[name]
            if name == "containerd":
                # the kubelet is gone: kill what runs in the pods, then their shims
                killed = localnode.kill_containers(directory)
                if killed:
                    stopped.append(f"{killed} container processes and shims")
            pid, start_time = proc["pid"], proc["start_time"]
            if not _is_ours(pid, start_time):
                _reap(pid)
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _is_ours(pid, start_time) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if _is_ours(pid, start_time):
                os.kill(pid, signal.SIGKILL)
                while _is_ours(pid, start_time):
                    _reap(pid)
                    time.sleep(0.05)
            _wait_gone(pid, start_time)
            stopped.append(f"{name} (pid {pid})")
    if node:
        localnode.kill_containers(directory)  # shims whose containerd died earlier
        localnode.unmount_under(directory)
        localnode.network_down(localnode.HostRecord.load(record_path))
        localnode.remove_cgroups()
        localnode.release(directory)
    if directory.is_dir():
        for child in directory.iterdir():
            if keep_logs and child.suffix == ".log":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        if not keep_logs:
            with contextlib.suppress(OSError):
                directory.rmdir()
    return stopped


# --------------------------------------------------------------------------- command line


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--node",
        action="store_true",
        help="up: add a real node (containerd, kubelet, kube-scheduler, kube-proxy; root only)",
    )
    parser.add_argument(
        "--run-dir",
        default=str(DEFAULT_RUN_DIR),
        help="run directory, relative to the repository root (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    run_dir = _resolve(args.run_dir)
    try:
        if args.command == "up":
            began = time.monotonic()
            cluster = start(run_dir, node=args.node)
            verb = "already running" if cluster.reused else "started"
            took = "" if cluster.reused else f" in {time.monotonic() - began:.1f} s"
            pids = ", ".join(f"{n} {p}" for n, p in cluster.pids.items())
            print(f"local cluster {verb}{took}: {cluster.server} (pids: {pids})")
            print(f"  kubeconfig: {_display(cluster.kubeconfig)}")
            print(f"  env:        source {_display(cluster.env_file)}")
            print(f"  logs:       {_display(run_dir)}/*.log")
        elif args.command == "down":
            stopped = stop(run_dir)
            print("stopped: " + ", ".join(stopped) if stopped else "no local cluster was running")
        else:
            found = status(run_dir)
            if found is None:
                print(f"no healthy local cluster in {_display(run_dir)}")
                return 1
            print(f"local cluster running: {found.server} ({_display(found.kubeconfig)})")
    except (ClusterError, localnode.NodeError, localnode.NodeUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
