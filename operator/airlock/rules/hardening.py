"""Pod hardening: the core Pod Security Standards controls, plus two rules beyond the standard.

Each PSS rule follows upstream's semantics at the level and version of the object's environment
(see :mod:`airlock.rules.podsec`): ``privileged-container``, ``host-namespaces``,
``host-path-volume`` and the baseline halves of ``dangerous-capabilities`` and
``seccomp-unconfined`` apply at both levels; ``run-as-root``, ``privilege-escalation`` and the
restricted halves only at ``restricted``, from the version that introduced them. The other PSS
controls are in :mod:`airlock.rules.pod_security`. Two rules go beyond PSS: the service-account
token and the writable root filesystem. Pod-spec fragments whose pod is supplied elsewhere
(``PodSpecView.complete`` false, e.g. a TrainJob trainer) get only the checks for explicitly
dangerous values: a missing setting proves nothing there, since the runtime supplies the pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airlock.findings import RuleInfo, Severity
from airlock.rules.base import Hit, Rule, Scope, mapping, sequence
from airlock.rules.podsec import (
    allowed,
    capabilities_shown,
    complete,
    container_name,
    container_sc,
    pod_annotations,
    pod_field,
    pod_sc,
    profile,
    restricted_since,
    shown,
    windows_exempt,
)
from airlock.workloads import PodSpecView, Workload, json_path

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

# The first standard (1.N) in which each restricted control applies.
_ESCALATION_SINCE = 8
_SECCOMP_FIELDS_SINCE = 19
_CAPABILITIES_RESTRICTED_SINCE = 22
_RUN_AS_USER_SINCE = 23

_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"
_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def check_privileged(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        for c in pod.containers:
            if container_sc(c).get("privileged") is True:
                yield Hit(f"{c.path}.securityContext.privileged", "container runs privileged")


def check_host_namespaces(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if pod_field(pod, field) is True:
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
    if not restricted_since(scope, _ESCALATION_SINCE):
        return
    for pod in complete(wl):
        if windows_exempt(pod, scope):
            continue
        for c in pod.containers:
            if container_sc(c).get("allowPrivilegeEscalation") is not False:
                yield Hit(
                    f"{c.path}.securityContext.allowPrivilegeEscalation",
                    f"container {container_name(c)} allows privilege escalation",
                )


def check_run_as_root(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """runAsNonRoot (restricted, 1.0+) and runAsUser: 0 (restricted, 1.23+)."""
    if not profile(scope).restricted:
        return
    user_check = profile(scope).minor >= _RUN_AS_USER_SINCE
    for pod in complete(wl):
        psc = pod_sc(pod)
        pod_non_root = psc.get("runAsNonRoot")
        if pod_non_root is False:
            yield Hit(f"{pod.path}.securityContext.runAsNonRoot", "pod sets runAsNonRoot: false")
        if user_check and psc.get("runAsUser") == 0:
            yield Hit(f"{pod.path}.securityContext.runAsUser", "pod runs as user 0 (root)")
        for c in pod.containers:
            sc = container_sc(c)
            name = container_name(c)
            non_root = sc.get("runAsNonRoot")
            if non_root is False:
                yield Hit(
                    f"{c.path}.securityContext.runAsNonRoot",
                    f"container {name} sets runAsNonRoot: false",
                )
            elif non_root is None and pod_non_root is not True:
                yield Hit(
                    f"{c.path}.securityContext.runAsNonRoot",
                    f"container {name} may run as root: runAsNonRoot is not true "
                    "at pod or container level",
                )
            if user_check and sc.get("runAsUser") == 0:
                yield Hit(
                    f"{c.path}.securityContext.runAsUser", f"container {name} runs as user 0 (root)"
                )


def check_capabilities(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """Baseline: only the default set may be added. Restricted (1.22+): drop ALL, add at most
    NET_BIND_SERVICE."""
    restricted = restricted_since(scope, _CAPABILITIES_RESTRICTED_SINCE)
    for pod in wl.pod_specs:
        strict = restricted and pod.complete and not windows_exempt(pod, scope)
        for c in pod.containers:
            caps = mapping(container_sc(c).get("capabilities"))
            name = container_name(c)
            added = [a for a in sequence(caps.get("add")) if isinstance(a, str)]
            worst = [a for a in added if a not in _BASELINE_CAPS]
            beyond = [a for a in added if a != "NET_BIND_SERVICE"] if strict else worst
            if beyond:
                yield Hit(
                    f"{c.path}.securityContext.capabilities.add",
                    f"container {name} adds capabilities {capabilities_shown(worst or beyond)}",
                )
            if strict and "ALL" not in sequence(caps.get("drop")):
                yield Hit(
                    f"{c.path}.securityContext.capabilities.drop",
                    f"container {name} does not drop ALL capabilities",
                )


def _seccomp_type(sc: Mapping[str, Any]) -> Any:
    return mapping(sc.get("seccompProfile")).get("type")


def _seccomp_annotation_ok(value: Any) -> bool:
    return isinstance(value, str) and (
        value in ("runtime/default", "docker/default") or value.startswith("localhost/")
    )


def _seccomp_annotations(wl: Workload, pod: PodSpecView) -> Iterator[Hit]:
    """Standards before 1.19 judge the alpha annotations (anything but runtime/default,
    docker/default and localhost/* is refused)."""
    annotations = pod_annotations(wl, pod)
    meta = pod.metadata_pointer or ()
    if _SECCOMP_POD_ANNOTATION in annotations:
        value = annotations[_SECCOMP_POD_ANNOTATION]
        if not _seccomp_annotation_ok(value):
            yield Hit(
                json_path((*meta, "annotations", _SECCOMP_POD_ANNOTATION)),
                "pod seccomp annotation is not runtime/default, docker/default or localhost/*",
            )
    for c in pod.containers:
        key = _SECCOMP_CONTAINER_ANNOTATION + container_name(c)
        if key in annotations and not _seccomp_annotation_ok(annotations[key]):
            yield Hit(
                json_path((*meta, "annotations", key)),
                f"container {container_name(c)} seccomp annotation is not runtime/default, "
                "docker/default or localhost/*",
            )


def check_seccomp(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """Baseline: no Unconfined profile (annotations before 1.19, fields since). Restricted
    (1.19+): RuntimeDefault or Localhost at pod level or on every container."""
    if profile(scope).minor < _SECCOMP_FIELDS_SINCE:
        for pod in wl.pod_specs:
            yield from _seccomp_annotations(wl, pod)
        return
    restricted = profile(scope).restricted
    for pod in wl.pod_specs:
        pod_type = _seccomp_type(pod_sc(pod))
        path = f"{pod.path}.securityContext.seccompProfile.type"
        pod_ok = allowed(pod_type, _SECCOMP_TYPES)
        if pod_type is not None and not pod_ok:
            yield Hit(path, f"pod seccomp profile {shown(pod_type)} is not allowed")
        strict = restricted and pod.complete and not windows_exempt(pod, scope)
        for c in pod.containers:
            ctype = _seccomp_type(container_sc(c))
            name = container_name(c)
            path = f"{c.path}.securityContext.seccompProfile.type"
            if ctype is not None and not allowed(ctype, _SECCOMP_TYPES):
                yield Hit(path, f"container {name} seccomp profile {shown(ctype)} is not allowed")
            elif strict and ctype is None and not pod_ok and pod_type is None:
                yield Hit(
                    path, f"container {name} has no RuntimeDefault or Localhost seccomp profile"
                )


def check_token_automount(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in complete(wl):
        if pod_field(pod, "automountServiceAccountToken") is not False:
            yield Hit(
                f"{pod.path}.automountServiceAccountToken",
                "the service-account token is mounted into the pod",
            )


def check_read_only_root(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in complete(wl):
        for c in pod.containers:
            if c.group == "ephemeralContainers":
                continue
            if container_sc(c).get("readOnlyRootFilesystem") is not True:
                yield Hit(
                    f"{c.path}.securityContext.readOnlyRootFilesystem",
                    f"container {container_name(c)} has a writable root filesystem",
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
