"""A real node beside the local control plane: containerd, runc, CNI, kubelet, kube-scheduler
and kube-proxy on this machine, with a network that never leaves it.

Used by hack/localcluster.py (``up --node``): the control plane is started by that module, the
node's parts by this one, and everything the node changes on the host is recorded in the run
directory and undone by :func:`teardown`, also after a crash (the next ``up`` or ``down`` finds
the record and finishes the job). Facts and flags: ../shared/notes/real-node.md.

What the host gets, and gives back:

- a bridge ``airlock0`` (10.244.0.1/24) with forwarding on that interface only, the pods'
  network; the API server listens on the bridge address so pods can reach it;
- a route for the Service CIDR to the bridge, so the API server reaches webhook Services;
- an ``AIRLOCK-NODE`` chain in FORWARD rejecting traffic from the bridge to any other
  interface (pods reach each other and the host, nothing else);
- the iptables chains of kube-proxy and the kubelet (every chain that was not there before is
  removed, in both the nft and the legacy backend), network namespaces, mounts under the run
  directory, containerd shims, the ``kubepods`` cgroups.

Ports 10248/10250/10256/10249 and the cgroup root are host-wide, so one node runs per machine:
``/run/airlock-node.json`` names the run directory that owns it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "airlock0"
NODE_IP = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
NODE_NAME = "airlock-node"
FORWARD_CHAIN = "AIRLOCK-NODE"
OWNER_FILE = Path("/run/airlock-node.json")
LOCK_FILE = Path("/run/lock/airlock-node.lock")
PAUSE_IMAGE = "localhost/airlock/pause:3.10"
NODE_COMPONENTS = ("containerd", "kubelet", "kube-scheduler", "kube-proxy")
CGROUP_ROOT = Path("/sys/fs/cgroup")
APT_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack")
CNI_BIN_DIR = Path("/usr/lib/cni")
_IPTABLES = ("iptables-nft", "iptables-legacy")
_TABLES = ("filter", "nat", "mangle", "raw")


class NodeUnavailableError(RuntimeError):
    """This machine cannot run a node (not root, no cgroups, no overlayfs …); the reason says
    which, so a test can be skipped with it and the demo can fall back."""


class NodeError(RuntimeError):
    """The node could not be started or stopped."""


def _say(message: str) -> None:
    print(f"[node] {message}", flush=True)


def _run(argv: Sequence[str], *, check: bool = True, quiet: bool = False) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(
            f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout.strip()}"
        )
    if not quiet and result.returncode != 0:
        _say(f"(ignored) {' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


# --------------------------------------------------------------------------- can it run here?


def unavailable_reason() -> str | None:
    """Why this machine cannot run a node, or None if it can (before installing anything)."""
    if os.geteuid() != 0:
        return "a node needs root (containerd, runc, iptables, mounts)"
    if not (CGROUP_ROOT / "memory").is_dir() and not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return "no cgroup hierarchy under /sys/fs/cgroup"
    if "overlay" not in Path("/proc/filesystems").read_text(encoding="ascii"):
        with contextlib.suppress(OSError):
            subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
        if "overlay" not in Path("/proc/filesystems").read_text(encoding="ascii"):
            return "the kernel has no overlayfs"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    return None


def ensure_packages() -> None:
    """Install containerd, runc, CNI plugins, iptables and conntrack from Debian if missing."""
    missing = [
        pkg
        for pkg, probe in (
            ("containerd", "containerd"),
            ("runc", "runc"),
            ("iptables", "iptables-nft"),
            ("conntrack", "conntrack"),
        )
        if shutil.which(probe) is None
    ]
    if not (CNI_BIN_DIR / "bridge").is_file():
        missing.append("containernetworking-plugins")
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise NodeUnavailableError(f"missing {', '.join(missing)} and no apt-get to install them")
    _say(f"installing {' '.join(missing)} from Debian (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise NodeError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")


# --------------------------------------------------------------------------- ownership


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """Serialise node set-up and teardown on this machine."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for {LOCK_FILE} (another node is being set up or torn down)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def owner() -> Path | None:
    """The run directory whose node holds this machine, if any."""
    try:
        data = json.loads(OWNER_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run_dir = data.get("run_dir") if isinstance(data, dict) else None
    return Path(run_dir) if isinstance(run_dir, str) else None


def claim(run_dir: Path) -> None:
    OWNER_FILE.write_text(json.dumps({"run_dir": str(run_dir), "pid": os.getpid()}) + "\n")


def release(run_dir: Path) -> None:
    if owner() == run_dir:
        OWNER_FILE.unlink(missing_ok=True)


# --------------------------------------------------------------------------- host record


@dataclass
class HostRecord:
    """What the host looked like before the node, so teardown removes only what we added."""

    chains: dict[str, dict[str, list[str]]]  # backend -> table -> chains present before
    netns: list[str]
    bridge_created: bool = False

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> HostRecord | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def _chains(backend: str, table: str) -> list[str]:
    if shutil.which(f"{backend}-save") is None:
        return []
    out = _run([f"{backend}-save", "-t", table], check=False, quiet=True)
    return [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]


def snapshot() -> HostRecord:
    chains = {b: {t: _chains(b, t) for t in _TABLES} for b in _IPTABLES}
    netns_dir = Path("/run/netns")
    netns = sorted(p.name for p in netns_dir.iterdir()) if netns_dir.is_dir() else []
    return HostRecord(chains=chains, netns=netns)


# --------------------------------------------------------------------------- network


def _link_exists(name: str) -> bool:
    return (
        subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode
        == 0
    )


def network_up(record: HostRecord) -> None:
    """The bridge, its address, forwarding on it, the Service route and the FORWARD guard."""
    if not _link_exists(BRIDGE):
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        record.bridge_created = True
    _run(["ip", "addr", "replace", f"{NODE_IP}/24", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])
    Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").write_text("1\n")
    # Pods may talk to each other and to the host (the API server), never beyond the machine.
    ipt = "iptables-nft" if shutil.which("iptables-nft") else "iptables"
    _run([ipt, "-N", FORWARD_CHAIN], check=False, quiet=True)
    _run([ipt, "-F", FORWARD_CHAIN])
    _run([ipt, "-A", FORWARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"])
    _run([ipt, "-A", FORWARD_CHAIN, "-i", BRIDGE, "-j", "REJECT"])
    _run([ipt, "-A", FORWARD_CHAIN, "-o", BRIDGE, "!", "-i", BRIDGE, "-j", "REJECT"])
    check = [ipt, "-C", "FORWARD", "-j", FORWARD_CHAIN]
    if subprocess.run(check, check=False, capture_output=True).returncode:
        _run([ipt, "-I", "FORWARD", "1", "-j", FORWARD_CHAIN])


def service_route(service_cidr: str) -> None:
    _run(["ip", "route", "replace", service_cidr, "dev", BRIDGE, "src", NODE_IP])


def _remove_new_chains(record: HostRecord) -> None:
    for backend in _IPTABLES:
        if shutil.which(f"{backend}-save") is None:
            continue
        before_tables = record.chains.get(backend, {})
        for table in _TABLES:
            before = set(before_tables.get(table, []))
            out = _run([f"{backend}-save", "-t", table], check=False, quiet=True)
            current = [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]
            new = [c for c in current if c not in before]
            if not new:
                continue
            new_set = set(new)
            # rules in surviving chains that jump to a chain we are about to remove
            for line in out.splitlines():
                if not line.startswith("-A "):
                    continue
                parts = shlex.split(line)
                if parts[1] in new_set:
                    continue
                if "-j" in parts and parts[parts.index("-j") + 1] in new_set:
                    _run([backend, "-t", table, "-D", *parts[1:]], check=False, quiet=True)
            for chain in new:
                _run([backend, "-t", table, "-F", chain], check=False, quiet=True)
            for chain in new:
                _run([backend, "-t", table, "-X", chain], check=False, quiet=True)


def network_down(record: HostRecord | None) -> None:
    if record is None:
        record = HostRecord(chains={}, netns=[])
    # our own chain is new by construction; kube-proxy's and the kubelet's too
    if not record.chains:
        # no snapshot (crashed before it was written): remove only the chains we know
        for backend in _IPTABLES:
            if shutil.which(backend) is None:
                continue
            _run([backend, "-D", "FORWARD", "-j", FORWARD_CHAIN], check=False, quiet=True)
            _run([backend, "-F", FORWARD_CHAIN], check=False, quiet=True)
            _run([backend, "-X", FORWARD_CHAIN], check=False, quiet=True)
    else:
        _remove_new_chains(record)
    netns_dir = Path("/run/netns")
    if netns_dir.is_dir():
        for ns in netns_dir.iterdir():
            if ns.name.startswith("cni-") and ns.name not in record.netns:
                subprocess.run(["umount", "-l", str(ns)], capture_output=True, check=False)
                ns.unlink(missing_ok=True)
    if _link_exists(BRIDGE) and (record.bridge_created or not record.chains):
        _run(["ip", "link", "delete", BRIDGE], check=False)


# --------------------------------------------------------------------------- configuration


def write_configs(
    run_dir: Path, *, pki: Path, service_cidr: str, kubeconfigs: dict[str, Path]
) -> dict[str, list[str]]:
    """Write containerd, CNI, kubelet and kube-proxy configuration; return each one's argv tail."""
    node = run_dir / "node"
    for sub in ("containerd/root", "containerd/state", "cni/net.d", "cni/ipam", "kubelet"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    sock = node / "containerd" / "containerd.sock"
    (node / "containerd" / "config.toml").write_text(
        f"""version = 2
root = "{node / "containerd/root"}"
state = "{node / "containerd/state"}"
oom_score = 0
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{node / "cni/net.d"}"
""",
        encoding="utf-8",
    )
    cni = {
        "cniVersion": "0.4.0",
        "name": "airlock",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    # Services are reached through the host, where kube-proxy's rules live
                    "routes": [{"dst": service_cidr, "gw": NODE_IP}],
                    "dataDir": str(node / "cni/ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (node / "cni/net.d/10-airlock.conflist").write_text(json.dumps(cni, indent=2) + "\n")
    (node / "resolv.conf").write_text("nameserver 127.0.0.1\noptions ndots:1\n")
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "containerRuntimeEndpoint": f"unix://{sock}",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "clusterDomain": "cluster.local",
        "resolvConf": str(node / "resolv.conf"),
        "registerNode": True,
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "syncFrequency": "10s",
        "fileCheckFrequency": "60s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": False,
        "protectKernelDefaults": False,
    }
    (node / "kubelet.json").write_text(json.dumps(kubelet, indent=2) + "\n")
    proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfigs["kube-proxy"])},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "oomScoreAdj": 0,
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    (node / "kube-proxy.json").write_text(json.dumps(proxy, indent=2) + "\n")
    return {
        "containerd": ["--config", str(node / "containerd/config.toml"), "--log-level", "warn"],
        "kubelet": [
            f"--config={node / 'kubelet.json'}",
            f"--kubeconfig={kubeconfigs['kubelet']}",
            f"--root-dir={node / 'kubelet'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ],
        "kube-scheduler": [
            f"--kubeconfig={kubeconfigs['kube-scheduler']}",
            f"--authentication-kubeconfig={kubeconfigs['kube-scheduler']}",
            f"--authorization-kubeconfig={kubeconfigs['kube-scheduler']}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
        ],
        "kube-proxy": [f"--config={node / 'kube-proxy.json'}", "--v=1"],
    }


def containerd_socket(run_dir: Path) -> Path:
    return run_dir / "node" / "containerd" / "containerd.sock"


def import_image(run_dir: Path, archive: Path) -> list[str]:
    """Import an OCI archive into the node's containerd (namespace k8s.io); returns the image
    names it held.

    Each name also gets its ``repository@sha256:…`` alias: the kubelet asks for a pod's image by
    digest when the pod names one, and an imported image (unlike a pulled one) is known only by
    the name in the archive.
    """
    if not archive.is_file():
        raise NodeError(f"{archive} does not exist (make image)")
    ctr = ["ctr", "--address", str(containerd_socket(run_dir)), "-n", "k8s.io"]
    out = _run([*ctr, "images", "import", "--all-platforms", str(archive)])
    found = re.findall(r"unpacking (\S+) \((sha256:[0-9a-f]{64})\)", out)
    if not found:
        raise NodeError(f"ctr imported no named image from {archive}: {out.strip()}")
    names = []
    imported = {name for name, _ in found}
    for name, digest in found:
        if "@" in name:
            continue  # the archive's own digest alias
        repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        if f"{repository}@{digest}" not in imported:
            _run([*ctr, "images", "tag", "--force", name, f"{repository}@{digest}"])
        names.append(name)
    if not names:
        raise NodeError(f"{archive} names no tagged image: {sorted(imported)}")
    return names


def list_images(run_dir: Path) -> list[str]:
    out = _run(
        ["ctr", "--address", str(containerd_socket(run_dir)), "-n", "k8s.io", "images", "ls", "-q"],
        check=False,
        quiet=True,
    )
    return [line.strip() for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------------------- teardown


def _descendants(pids: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def shims(run_dir: Path) -> set[int]:
    """containerd shims started for this run directory's containerd (they outlive it)."""
    marker = str(containerd_socket(run_dir)).encode()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline and marker in cmdline:
            found.add(int(entry.name))
    return found


def kill_containers(run_dir: Path) -> int:
    """SIGKILL every container process and shim of this node; returns how many were killed."""
    parents = shims(run_dir)
    victims = _descendants(parents) | parents
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in victims):
        for pid in victims:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    return len(victims)


def unmount_under(root: Path) -> int:
    """Unmount everything mounted at or below root (deepest first)."""
    prefix = str(root.resolve())
    mounts: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return len(mounts)


def remove_cgroups() -> None:
    """Remove the kubelet's ``kubepods`` cgroups (empty once the containers are gone)."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / "kubepods"
        if not top.is_dir():
            continue
        dirs = sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        )
        for d in [*dirs, top]:
            with contextlib.suppress(OSError):
                d.rmdir()
