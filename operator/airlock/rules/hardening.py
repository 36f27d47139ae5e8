"""Pod hardening: the Pod Security Standards controls that matter most, with upstream semantics.

``privileged-container``, ``host-namespaces``, ``host-path-volume``, the baseline half of
``dangerous-capabilities`` and ``seccomp-unconfined`` follow the *baseline* level; the rest follow
*restricted*. Two rules go beyond PSS: the service-account token and the writable root filesystem.
Pod-spec fragments whose pod is supplied elsewhere (``PodSpecView.complete`` false, e.g. a TrainJob
trainer) get only the checks for explicitly dangerous values (privileged, host namespaces,
hostPath):
a missing setting proves nothing there, since the runtime supplies the pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airlock.findings import RuleInfo, Severity
from airlock.rules.base import Hit, Rule, Scope, mapping, sequence
from airlock.workloads import ContainerView, PodSpecView, Workload

_PSS_B = "PSS baseline"
_PSS_R = "PSS restricted"

PRIVILEGED_CONTAINER = RuleInfo(
    id="privileged-container",
    family="hardening",
    severity=Severity.CRITICAL,
    title="Privileged container",
    reason="the container runs privileged, with every capability and access to host devices",
    fix="remove securityContext.privileged (or set it to false)",
    rationale=(
        "A privileged container is root on the node: it can load kernel modules, read every "
        "other pod's secrets and GPUs' memory, and escape trivially."
    ),
    references=(f"{_PSS_B}: Privileged Containers", "CIS 5.2.2", "NSA/CISA: non-root containers"),
)

HOST_NAMESPACES = RuleInfo(
    id="host-namespaces",
    family="hardening",
    severity=Severity.HIGH,
    title="Host namespaces shared",
    reason="the pod shares the node's network, PID or IPC namespace",
    fix="remove hostNetwork, hostPID and hostIPC (or set them to false)",
    rationale=(
        "Sharing host namespaces exposes node processes, loopback services and the kubelet, and "
        "defeats network policies."
    ),
    references=(f"{_PSS_B}: Host Namespaces", "CIS 5.2.3", "CIS 5.2.4", "CIS 5.2.5"),
)

HOST_PATH_VOLUME = RuleInfo(
    id="host-path-volume",
    family="hardening",
    severity=Severity.HIGH,
    title="hostPath volume",
    reason="the pod mounts a path of the node's filesystem",
    fix="use a PersistentVolumeClaim, emptyDir, ConfigMap, Secret or CSI volume, not hostPath",
    rationale=(
        "hostPath mounts give access to node files (kubelet credentials, container runtime "
        "socket, other pods' data) and are a common escape path."
    ),
    references=(f"{_PSS_B}: HostPath Volumes", "CIS 5.2.12"),
)

PRIVILEGE_ESCALATION = RuleInfo(
    id="privilege-escalation",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Privilege escalation allowed",
    reason="the container does not set allowPrivilegeEscalation: false",
    fix="set securityContext.allowPrivilegeEscalation: false (the secure-defaults mutation can)",
    rationale=(
        "Without it, setuid binaries and file capabilities let a process gain more privileges "
        "than its parent."
    ),
    references=(f"{_PSS_R}: Privilege Escalation", "CIS 5.2.6"),
    mutable=True,
)

RUN_AS_ROOT = RuleInfo(
    id="run-as-root",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Container may run as root",
    reason="runAsNonRoot is not true, or runAsUser is 0",
    fix="set securityContext.runAsNonRoot: true and a non-zero runAsUser (pod or container level)",
    rationale=(
        "Root in a container is root on the node as soon as any isolation layer fails; most "
        "model servers and training images run fine as an unprivileged user."
    ),
    references=(
        f"{_PSS_R}: Running as Non-root",
        f"{_PSS_R}: Running as Non-root user",
        "CIS 5.2.7",
    ),
)

DANGEROUS_CAPABILITIES = RuleInfo(
    id="dangerous-capabilities",
    family="hardening",
    severity=Severity.HIGH,
    title="Dangerous Linux capabilities",
    reason="the container adds capabilities beyond NET_BIND_SERVICE or does not drop ALL",
    fix="set securityContext.capabilities.drop: [ALL] and add back only NET_BIND_SERVICE",
    rationale=(
        "Capabilities such as SYS_ADMIN, NET_ADMIN or SYS_PTRACE are each most of the way to "
        "root on the node."
    ),
    references=(f"{_PSS_B}: Capabilities", f"{_PSS_R}: Capabilities", "CIS 5.2.8", "CIS 5.2.9"),
    mutable=True,
)

SECCOMP_UNCONFINED = RuleInfo(
    id="seccomp-unconfined",
    family="hardening",
    severity=Severity.MEDIUM,
    title="No seccomp profile",
    reason="the seccomp profile is Unconfined or not set to RuntimeDefault/Localhost",
    fix="set securityContext.seccompProfile.type: RuntimeDefault at pod level",
    rationale="Seccomp blocks the rarely used syscalls through which most kernel exploits go.",
    references=(f"{_PSS_B}: Seccomp", f"{_PSS_R}: Seccomp", "CIS 5.7.2"),
    mutable=True,
)

SERVICE_ACCOUNT_TOKEN_AUTOMOUNT = RuleInfo(
    id="service-account-token-automount",
    family="hardening",
    severity=Severity.LOW,
    title="Service-account token mounted",
    reason="the pod does not set automountServiceAccountToken: false",
    fix="set automountServiceAccountToken: false unless the pod calls the Kubernetes API",
    rationale=(
        "A mounted token lets anyone who gets code execution in the pod act as its service "
        "account against the API server."
    ),
    references=("CIS 5.1.6", "NSA/CISA: service account tokens"),
    mutable=True,
)

WRITABLE_ROOT_FILESYSTEM = RuleInfo(
    id="writable-root-filesystem",
    family="hardening",
    severity=Severity.LOW,
    title="Writable root filesystem",
    reason="the container does not set readOnlyRootFilesystem: true",
    fix="set securityContext.readOnlyRootFilesystem: true and mount emptyDir for scratch paths",
    rationale=(
        "A read-only root filesystem stops an attacker from dropping tools or altering the "
        "serving code, and keeps model caches on explicit volumes."
    ),
    references=("NSA/CISA: immutable container filesystems", "NIST SP 800-190 4.4.4"),
)

_BASELINE_CAPS = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip


def _complete(wl: Workload) -> Iterator[PodSpecView]:
    for pod in wl.pod_specs:
        if pod.complete:
            yield pod


def _sc(c: ContainerView) -> Mapping[str, Any]:
    return mapping(c.container.get("securityContext"))


def _pod_field(pod: PodSpecView, key: str) -> Any:
    """A pod-level field as it applies (Argo templates inherit workflow-level defaults)."""
    found = pod.effective(key)
    return None if found is None else found[1]


def _pod_sc(pod: PodSpecView) -> Mapping[str, Any]:
    return mapping(_pod_field(pod, "securityContext"))


def _windows(pod: PodSpecView) -> bool:
    """PSS exempts Windows pods from the Linux-only restricted controls."""
    return mapping(pod.spec.get("os")).get("name") == "windows"


def check_privileged(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        for c in pod.containers:
            if _sc(c).get("privileged") is True:
                yield Hit(f"{c.path}.securityContext.privileged", "container runs privileged")


def check_host_namespaces(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if _pod_field(pod, field) is True:
                yield Hit(f"{pod.path}.{field}", f"{field}: true shares the node's namespace")


def check_host_path(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        for i, vol in enumerate(sequence(pod.spec.get("volumes"))):
            host_path = mapping(vol).get("hostPath")
            if host_path is not None:
                where = mapping(host_path).get("path", "?")
                yield Hit(
                    f"{pod.path}.volumes[{i}].hostPath",
                    f"volume {mapping(vol).get('name', i)} mounts host path {where}",
                )


def check_privilege_escalation(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in _complete(wl):
        if _windows(pod):
            continue
        for c in pod.containers:
            if _sc(c).get("allowPrivilegeEscalation") is not False:
                yield Hit(
                    f"{c.path}.securityContext.allowPrivilegeEscalation",
                    f"container {c.container.get('name', '?')} allows privilege escalation",
                )


def check_run_as_root(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in _complete(wl):
        pod_sc = _pod_sc(pod)
        pod_non_root = pod_sc.get("runAsNonRoot")
        if pod_sc.get("runAsUser") == 0:
            yield Hit(f"{pod.path}.securityContext.runAsUser", "pod runs as user 0 (root)")
        if _windows(pod):
            continue
        for c in pod.containers:
            sc = _sc(c)
            name = c.container.get("name", "?")
            non_root = sc.get("runAsNonRoot")
            if non_root is False:
                yield Hit(
                    f"{c.path}.securityContext.runAsNonRoot",
                    f"container {name} sets runAsNonRoot: false",
                )
            elif non_root is not True and pod_non_root is not True:
                yield Hit(
                    f"{c.path}.securityContext.runAsNonRoot",
                    f"container {name} may run as root: runAsNonRoot is not true "
                    "at pod or container level",
                )
            if sc.get("runAsUser") == 0:
                yield Hit(
                    f"{c.path}.securityContext.runAsUser", f"container {name} runs as user 0 (root)"
                )


def check_capabilities(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in _complete(wl):
        windows = _windows(pod)
        for c in pod.containers:
            caps = mapping(_sc(c).get("capabilities"))
            name = c.container.get("name", "?")
            added = [a for a in sequence(caps.get("add")) if isinstance(a, str)]
            beyond = [a for a in added if a != "NET_BIND_SERVICE"]
            if beyond:
                worst = [a for a in beyond if a not in _BASELINE_CAPS]
                shown = ", ".join(worst or beyond)
                yield Hit(
                    f"{c.path}.securityContext.capabilities.add",
                    f"container {name} adds capabilities {shown}",
                )
            if not windows and "ALL" not in sequence(caps.get("drop")):
                yield Hit(
                    f"{c.path}.securityContext.capabilities.drop",
                    f"container {name} does not drop ALL capabilities",
                )


def _seccomp_type(sc: Mapping[str, Any]) -> Any:
    return mapping(sc.get("seccompProfile")).get("type")


def check_seccomp(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in _complete(wl):
        pod_type = _seccomp_type(_pod_sc(pod))
        if pod_type == "Unconfined":
            yield Hit(
                f"{pod.path}.securityContext.seccompProfile.type", "pod seccomp profile Unconfined"
            )
        if _windows(pod):
            continue
        pod_ok = pod_type in ("RuntimeDefault", "Localhost")
        for c in pod.containers:
            ctype = _seccomp_type(_sc(c))
            name = c.container.get("name", "?")
            path = f"{c.path}.securityContext.seccompProfile.type"
            if ctype == "Unconfined":
                yield Hit(path, f"container {name} seccomp profile Unconfined")
            elif ctype is None and not pod_ok and pod_type != "Unconfined":
                yield Hit(
                    path, f"container {name} has no RuntimeDefault or Localhost seccomp profile"
                )
            elif ctype is not None and ctype not in ("RuntimeDefault", "Localhost"):
                yield Hit(path, f"container {name} seccomp profile {ctype!r} is not allowed")


def check_token_automount(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in _complete(wl):
        if _pod_field(pod, "automountServiceAccountToken") is not False:
            yield Hit(
                f"{pod.path}.automountServiceAccountToken",
                "the service-account token is mounted into the pod",
            )


def check_read_only_root(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in _complete(wl):
        for c in pod.containers:
            if c.group == "ephemeralContainers":
                continue
            if _sc(c).get("readOnlyRootFilesystem") is not True:
                yield Hit(
                    f"{c.path}.securityContext.readOnlyRootFilesystem",
                    f"container {c.container.get('name', '?')} has a writable root filesystem",
                )


RULES = (
    Rule(PRIVILEGED_CONTAINER, check_privileged),
    Rule(HOST_NAMESPACES, check_host_namespaces),
    Rule(HOST_PATH_VOLUME, check_host_path),
    Rule(PRIVILEGE_ESCALATION, check_privilege_escalation),
    Rule(RUN_AS_ROOT, check_run_as_root),
    Rule(DANGEROUS_CAPABILITIES, check_capabilities),
    Rule(SECCOMP_UNCONFINED, check_seccomp),
    Rule(SERVICE_ACCOUNT_TOKEN_AUTOMOUNT, check_token_automount),
    Rule(WRITABLE_ROOT_FILESYSTEM, check_read_only_root),
)
