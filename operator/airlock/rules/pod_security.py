"""The rest of the Pod Security Standards: every control not in :mod:`airlock.rules.hardening`.

Each rule follows upstream Pod Security Admission at the level and version of the object's
environment. All but ``restricted-volume-types`` (and the restricted half of ``proc-mount``) are
baseline controls, judged at both levels. They look only at values a manifest sets explicitly, so
they apply to pod-spec fragments as well as to whole pods.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from airlock.findings import RuleInfo, Severity
from airlock.rules.base import Hit, Rule, Scope, mapping, sequence
from airlock.rules.podsec import (
    allowed,
    container_name,
    container_sc,
    pod_annotations,
    pod_sc,
    profile,
    restricted_since,
    shown,
    user_namespaced,
)
from airlock.workloads import ContainerView, Workload, json_path

_PSS_B = "PSS baseline"
_PSS_R = "PSS restricted"

HOST_PORTS = RuleInfo(
    id="host-ports",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Host port",
    reason="a container binds a port of the node (hostPort)",
    fix="remove ports[].hostPort and expose the pod through a Service",
    rationale=(
        "A host port ties the pod to one port of the node's network, bypasses network policies "
        "on most plugins and can shadow the node's own services."
    ),
    references=(f"{_PSS_B}: Host Ports", "CIS 5.2.13"),
)

APPARMOR_PROFILE = RuleInfo(
    id="apparmor-profile",
    family="hardening",
    severity=Severity.MEDIUM,
    title="AppArmor profile overridden",
    reason="an AppArmor profile other than RuntimeDefault or Localhost is set",
    fix="remove the appArmorProfile (or set type RuntimeDefault or Localhost) and any "
    "container.apparmor.security.beta.kubernetes.io annotation other than runtime/default "
    "or localhost/<profile>",
    rationale=(
        "The runtime's default AppArmor profile confines file, mount and capability use; "
        "Unconfined removes that layer."
    ),
    references=(f"{_PSS_B}: AppArmor",),
)

SELINUX_OPTIONS = RuleInfo(
    id="selinux-options",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Custom SELinux options",
    reason="seLinuxOptions sets a user or role, or a type outside the container types",
    fix="remove seLinuxOptions.user and .role; leave type unset or use container_t, "
    "container_init_t, container_kvm_t (or container_engine_t from v1.31)",
    rationale=(
        "A custom SELinux user, role or type can lift the label that keeps a container away "
        "from the node's and other pods' files."
    ),
    references=(f"{_PSS_B}: SELinux",),
)

PROC_MOUNT = RuleInfo(
    id="proc-mount",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Unmasked /proc",
    reason="a container sets procMount to something other than Default",
    fix="remove securityContext.procMount (or set it to Default)",
    rationale=(
        "The default /proc masks hide kernel interfaces that leak host information or allow "
        "writes to the node's kernel settings."
    ),
    references=(f"{_PSS_B}: /proc Mount Type", f"{_PSS_R}: /proc Mount Type (v1.35+)"),
)

UNSAFE_SYSCTLS = RuleInfo(
    id="unsafe-sysctls",
    family="hardening",
    severity=Severity.HIGH,
    title="Unsafe sysctl",
    reason="the pod sets a sysctl outside the safe, namespaced set",
    fix="remove securityContext.sysctls entries outside the safe set (kernel.shm_rmid_forced, "
    "net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies, … per version)",
    rationale=(
        "Sysctls outside the safe set are not isolated per pod: they change the kernel for every "
        "workload on the node or switch off security mechanisms."
    ),
    references=(f"{_PSS_B}: Sysctls",),
)

RESTRICTED_VOLUME_TYPES = RuleInfo(
    id="restricted-volume-types",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Restricted volume type",
    reason="the pod uses a volume type outside the restricted standard's list",
    fix="use configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, "
    "projected or secret volumes (reach other storage through a PersistentVolumeClaim)",
    rationale=(
        "Inline volume sources (NFS, iSCSI, cloud disks, gitRepo, hostPath) bypass the storage "
        "classes and access controls the cluster admin set up for persistent volumes."
    ),
    references=(f"{_PSS_R}: Volume Types",),
)

WINDOWS_HOST_PROCESS = RuleInfo(
    id="windows-host-process",
    family="hardening",
    severity=Severity.CRITICAL,
    title="Windows HostProcess container",
    reason="the pod or a container sets windowsOptions.hostProcess: true",
    fix="remove securityContext.windowsOptions.hostProcess (or set it to false)",
    rationale="A HostProcess container runs directly on the Windows node with its privileges.",
    references=(f"{_PSS_B}: HostProcess",),
)

HOST_PROBES = RuleInfo(
    id="host-probes",
    family="hardening",
    severity=Severity.MEDIUM,
    title="Probe or lifecycle hook on another host",
    reason="a probe or lifecycle hook sets httpGet.host or tcpSocket.host",
    fix="remove the host field from probes and lifecycle hooks (they then target the pod)",
    rationale=(
        "The kubelet sends probes and hooks from the node: a host field makes it reach any "
        "address the node can, a server-side request forgery through the kubelet."
    ),
    references=(f"{_PSS_B}: Probes / Lifecycle Hooks (v1.34+)",),
)

# Versions (1.N) at which a control starts or changes.
_SELINUX_ENGINE_SINCE = 31
_PROC_MOUNT_USERNS_SINCE = 35
_PROC_MOUNT_RESTRICTED_SINCE = 35
_HOST_PROBES_SINCE = 34

_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_TYPES_31 = _SELINUX_TYPES | {"container_engine_t"}

# The safe sysctls, by the first version that allows each one.
_SAFE_SYSCTLS: tuple[tuple[int, frozenset[str]], ...] = (
    (
        0,
        frozenset(
            {
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
            }
        ),
    ),
    (27, frozenset({"net.ipv4.ip_local_reserved_ports"})),
    (
        29,
        frozenset(
            {
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            }
        ),
    ),
    (32, frozenset({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})),
    (37, frozenset({"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"})),
)

_ALLOWED_VOLUMES = frozenset(
    {
        "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
        "persistentVolumeClaim", "projected", "secret",
    }
)  # fmt: skip

_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_HOOKS = ("postStart", "preStop")


@functools.cache  # a handful of versions: built once each, not on every request
def safe_sysctls(minor: int) -> frozenset[str]:
    """The sysctls the baseline standard of 1.``minor`` allows."""
    out: set[str] = set()
    for since, names in _SAFE_SYSCTLS:
        if minor >= since:
            out |= names
    return frozenset(out)


def check_host_ports(wl: Workload, scope: Scope) -> Iterator[Hit]:
    permitted = profile(scope).allowed_host_ports
    for pod in wl.pod_specs:
        for c in pod.containers:
            for i, port in enumerate(sequence(c.container.get("ports"))):
                host_port = mapping(port).get("hostPort")
                if host_port and not (isinstance(host_port, int) and host_port in permitted):
                    yield Hit(
                        f"{c.path}.ports[{i}].hostPort",
                        f"container {container_name(c)} binds host port {shown(host_port)}",
                    )


def _apparmor_type_ok(spec: Any) -> bool:
    return allowed(mapping(spec).get("type"), _APPARMOR_TYPES)


def _apparmor_annotation_ok(value: Any) -> bool:
    return value in ("", "runtime/default") or (
        isinstance(value, str) and value.startswith("localhost/")
    )


def check_apparmor(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        psc = pod_sc(pod)
        if "appArmorProfile" in psc and not _apparmor_type_ok(psc["appArmorProfile"]):
            kind = mapping(psc["appArmorProfile"]).get("type")
            yield Hit(
                f"{pod.path}.securityContext.appArmorProfile.type",
                f"pod AppArmor profile {shown(kind)} is not allowed",
            )
        for c in pod.containers:
            sc = container_sc(c)
            if "appArmorProfile" in sc and not _apparmor_type_ok(sc["appArmorProfile"]):
                kind = mapping(sc["appArmorProfile"]).get("type")
                yield Hit(
                    f"{c.path}.securityContext.appArmorProfile.type",
                    f"container {container_name(c)} AppArmor profile {shown(kind)} is not allowed",
                )
        meta = pod.metadata_pointer or ()
        for key, value in pod_annotations(wl, pod).items():
            if (
                isinstance(key, str)
                and key.startswith(_APPARMOR_ANNOTATION)
                and not _apparmor_annotation_ok(value)
            ):
                yield Hit(
                    json_path((*meta, "annotations", key)),
                    f"AppArmor annotation {key} sets a profile other than runtime/default "
                    "or localhost/*",
                )


def _selinux_problems(opts: Mapping[str, Any], types: frozenset[str]) -> list[str]:
    problems = []
    kind = opts.get("type", "")
    if not allowed(kind, types):
        problems.append(f"type {shown(kind)}")
    for field in ("user", "role"):
        if opts.get(field):
            problems.append(f"{field} {shown(opts[field])}")
    return problems


def check_selinux(wl: Workload, scope: Scope) -> Iterator[Hit]:
    types = _SELINUX_TYPES_31 if profile(scope).minor >= _SELINUX_ENGINE_SINCE else _SELINUX_TYPES
    for pod in wl.pod_specs:
        psc = pod_sc(pod)
        if "seLinuxOptions" in psc:
            problems = _selinux_problems(mapping(psc["seLinuxOptions"]), types)
            if problems:
                yield Hit(
                    f"{pod.path}.securityContext.seLinuxOptions",
                    f"pod sets SELinux {', '.join(problems)}",
                )
        for c in pod.containers:
            sc = container_sc(c)
            if "seLinuxOptions" in sc:
                problems = _selinux_problems(mapping(sc["seLinuxOptions"]), types)
                if problems:
                    yield Hit(
                        f"{c.path}.securityContext.seLinuxOptions",
                        f"container {container_name(c)} sets SELinux {', '.join(problems)}",
                    )


def check_proc_mount(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """Baseline: Default only, except in a user namespace from 1.35. Restricted (1.35+): Default
    only, user namespace or not."""
    minor = profile(scope).minor
    strict = restricted_since(scope, _PROC_MOUNT_RESTRICTED_SINCE)
    for pod in wl.pod_specs:
        if not strict and minor >= _PROC_MOUNT_USERNS_SINCE and user_namespaced(pod):
            continue
        for c in pod.containers:
            sc = container_sc(c)
            if "procMount" in sc and sc["procMount"] not in (None, "Default"):
                yield Hit(
                    f"{c.path}.securityContext.procMount",
                    f"container {container_name(c)} sets procMount {shown(sc['procMount'])}",
                )


def check_sysctls(wl: Workload, scope: Scope) -> Iterator[Hit]:
    safe = safe_sysctls(profile(scope).minor)
    for pod in wl.pod_specs:
        for i, entry in enumerate(sequence(pod_sc(pod).get("sysctls"))):
            name = mapping(entry).get("name")
            if not allowed(name, safe):
                yield Hit(
                    f"{pod.path}.securityContext.sysctls[{i}].name",
                    f"sysctl {shown(name)} is not in the safe set",
                )


def check_volume_types(wl: Workload, scope: Scope) -> Iterator[Hit]:
    if not profile(scope).restricted:
        return
    for pod in wl.pod_specs:
        for i, vol in enumerate(sequence(pod.spec.get("volumes"))):
            volume = mapping(vol)
            bad = [k for k in volume if k != "name" and k not in _ALLOWED_VOLUMES]
            if bad:
                yield Hit(
                    f"{pod.path}.volumes[{i}].{bad[0]}",
                    f"volume {volume.get('name', i)} uses restricted type {', '.join(bad)}",
                )


def check_host_process(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for pod in wl.pod_specs:
        if mapping(pod_sc(pod).get("windowsOptions")).get("hostProcess") is True:
            yield Hit(
                f"{pod.path}.securityContext.windowsOptions.hostProcess",
                "pod runs as a Windows HostProcess",
            )
        for c in pod.containers:
            if mapping(container_sc(c).get("windowsOptions")).get("hostProcess") is True:
                yield Hit(
                    f"{c.path}.securityContext.windowsOptions.hostProcess",
                    f"container {container_name(c)} runs as a Windows HostProcess",
                )


def _handler_hosts(handler: Any, path: str) -> Iterator[tuple[str, Any]]:
    for action in ("httpGet", "tcpSocket"):
        host = mapping(mapping(handler).get(action)).get("host")
        if host:
            yield f"{path}.{action}.host", host


def _container_hosts(c: ContainerView) -> Iterator[tuple[str, Any]]:
    """(path, host) of every probe and lifecycle hook of ``c`` that names a host."""
    container = c.container
    for key in _PROBES:
        probe = container.get(key)
        if probe:
            yield from _handler_hosts(probe, f"{c.path}.{key}")
    lifecycle = container.get("lifecycle")
    if lifecycle:
        for hook in _HOOKS:
            handler = mapping(lifecycle).get(hook)
            if handler:
                yield from _handler_hosts(handler, f"{c.path}.lifecycle.{hook}")


def check_host_probes(wl: Workload, scope: Scope) -> Iterator[Hit]:
    if profile(scope).minor < _HOST_PROBES_SINCE:
        return
    for pod in wl.pod_specs:
        for c in pod.containers:
            for path, host in _container_hosts(c):
                yield Hit(
                    path, f"container {container_name(c)} sends a probe or hook to {shown(host)}"
                )


RULES = (
    Rule(HOST_PORTS, check_host_ports),
    Rule(APPARMOR_PROFILE, check_apparmor),
    Rule(SELINUX_OPTIONS, check_selinux),
    Rule(PROC_MOUNT, check_proc_mount),
    Rule(UNSAFE_SYSCTLS, check_sysctls),
    Rule(RESTRICTED_VOLUME_TYPES, check_volume_types),
    Rule(WINDOWS_HOST_PROCESS, check_host_process),
    Rule(HOST_PROBES, check_host_probes),
)
