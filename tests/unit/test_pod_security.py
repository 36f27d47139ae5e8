"""Pod Security Standards by level and version: each control on both sides of every boundary.

Each case spoils a clean, hardened pod one way and says, for a level and version, whether the
control's rule fires. Versions are where upstream's semantics change (a control appears, a safe
set grows, an exemption starts); ``latest`` is the default of a policy that says nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airlock.engine import evaluate
from airlock.errors import PolicyError
from airlock.model import load_policy
from airlock.rules.pod_security import safe_sysctls
from airlock.state import PSS_LATEST, EvalContext, PodSecurityProfile

from tests.support.builders import clean_pod, deployment

Mut = Callable[[dict[str, Any]], None]
PSS_RULES = {
    "privileged-container", "host-namespaces", "host-path-volume", "privilege-escalation",
    "run-as-root", "dangerous-capabilities", "seccomp-unconfined", "host-ports",
    "apparmor-profile", "selinux-options", "proc-mount", "unsafe-sysctls",
    "restricted-volume-types", "windows-host-process", "host-probes",
}  # fmt: skip


def context(level: str = "restricted", version: str = "latest", **extra: Any) -> EvalContext:
    policy = load_policy(
        {"environments": [{"name": "e", "podSecurity": {"level": level, "version": version}}]}
        | extra
    )
    return EvalContext.build(policy)


def pss_rules(obj: dict[str, Any], ctx: EvalContext) -> set[str]:
    return {f.rule for f in evaluate(obj, ctx).findings} & PSS_RULES


def spec(p: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = p["spec"]
    return s


def c0(p: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = p["spec"]["containers"][0]
    return c


def sc0(p: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = c0(p)["securityContext"]
    return s


def psc(p: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = p["spec"]["securityContext"]
    return s


def unset(key: str) -> Mut:
    return lambda p: sc0(p).pop(key)


def set_sc(**kw: Any) -> Mut:
    return lambda p: sc0(p).update(kw)


def set_pod_sc(**kw: Any) -> Mut:
    return lambda p: psc(p).update(kw)


def annotate(key: str, value: str) -> Mut:
    return lambda p: p["metadata"].setdefault("annotations", {}).update({key: value})


def both(*muts: Mut) -> Mut:
    def run(p: dict[str, Any]) -> None:
        for m in muts:
            m(p)

    return run


def windows(p: dict[str, Any]) -> None:
    spec(p)["os"] = {"name": "windows"}


def sysctl(name: str) -> Mut:
    return set_pod_sc(sysctls=[{"name": name, "value": "1"}])


def probe_host(where: str) -> Mut:
    def run(p: dict[str, Any]) -> None:
        handler = {"httpGet": {"host": "10.0.0.1", "port": 80}}
        if where in ("postStart", "preStop"):
            c0(p)["lifecycle"] = {where: handler}
        else:
            c0(p)[where] = handler

    return run


# (rule, spoil, level, version, fires)
CASES: list[tuple[str, Mut, str, str, bool]] = [
    # host ports: baseline, every version; 0 means "none"
    ("host-ports", lambda p: c0(p).update(ports=[{"hostPort": 80}]), "baseline", "v1.0", True),
    ("host-ports", lambda p: c0(p).update(ports=[{"hostPort": 0}]), "baseline", "latest", False),
    ("host-ports", lambda p: c0(p).update(ports=[{"containerPort": 80}]), "restricted", "latest",
     False),
    # AppArmor: fields and the beta annotation, every version
    ("apparmor-profile", set_sc(appArmorProfile={"type": "Unconfined"}), "baseline", "latest",
     True),
    ("apparmor-profile", set_pod_sc(appArmorProfile={"type": "Unconfined"}), "baseline", "v1.0",
     True),
    ("apparmor-profile", set_sc(appArmorProfile={"type": "Localhost", "localhostProfile": "x"}),
     "restricted", "latest", False),
    ("apparmor-profile", annotate("container.apparmor.security.beta.kubernetes.io/main",
                                  "unconfined"), "baseline", "v1.0", True),
    ("apparmor-profile", annotate("container.apparmor.security.beta.kubernetes.io/main",
                                  "localhost/prof"), "baseline", "latest", False),
    ("apparmor-profile", annotate("container.apparmor.security.beta.kubernetes.io/main",
                                  "runtime/default"), "baseline", "latest", False),
    # SELinux: user and role forbidden, type from a list that grows in 1.31
    ("selinux-options", set_sc(seLinuxOptions={"user": "system_u"}), "baseline", "v1.0", True),
    ("selinux-options", set_pod_sc(seLinuxOptions={"role": "sysadm_r"}), "baseline", "latest",
     True),
    ("selinux-options", set_sc(seLinuxOptions={"type": "container_t", "level": "s0:c1,c2"}),
     "baseline", "latest", False),
    ("selinux-options", set_sc(seLinuxOptions={"type": "container_engine_t"}), "baseline",
     "v1.30", True),
    ("selinux-options", set_sc(seLinuxOptions={"type": "container_engine_t"}), "baseline",
     "v1.31", False),
    # /proc mount: user namespaces relax baseline from 1.35; restricted forbids from 1.35
    ("proc-mount", set_sc(procMount="Unmasked"), "baseline", "v1.0", True),
    ("proc-mount", set_sc(procMount="Default"), "baseline", "v1.0", False),
    ("proc-mount", both(set_sc(procMount="Unmasked"), lambda p: spec(p).update(hostUsers=False)),
     "baseline", "v1.34", True),
    ("proc-mount", both(set_sc(procMount="Unmasked"), lambda p: spec(p).update(hostUsers=False)),
     "baseline", "v1.35", False),
    ("proc-mount", both(set_sc(procMount="Unmasked"), lambda p: spec(p).update(hostUsers=False)),
     "restricted", "v1.34", True),
    ("proc-mount", both(set_sc(procMount="Unmasked"), lambda p: spec(p).update(hostUsers=False)),
     "restricted", "v1.35", True),
    # sysctls: the safe set by version
    ("unsafe-sysctls", sysctl("kernel.msgmax"), "baseline", "latest", True),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_syncookies"), "baseline", "v1.0", False),
    ("unsafe-sysctls", sysctl("net.ipv4.ip_local_reserved_ports"), "baseline", "v1.26", True),
    ("unsafe-sysctls", sysctl("net.ipv4.ip_local_reserved_ports"), "baseline", "v1.27", False),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_keepalive_time"), "baseline", "v1.28", True),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_keepalive_time"), "baseline", "v1.29", False),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_rmem"), "baseline", "v1.31", True),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_rmem"), "baseline", "v1.32", False),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_notsent_lowat"), "baseline", "v1.36", True),
    ("unsafe-sysctls", sysctl("net.ipv4.tcp_notsent_lowat"), "baseline", "v1.37", False),
    # volume types: restricted only; a bare volume is an emptyDir after API defaulting
    ("restricted-volume-types", lambda p: spec(p).update(volumes=[{"name": "v", "nfs": {}}]),
     "restricted", "v1.0", True),
    ("restricted-volume-types", lambda p: spec(p).update(volumes=[{"name": "v", "nfs": {}}]),
     "baseline", "latest", False),
    ("restricted-volume-types", lambda p: spec(p).update(volumes=[{"name": "v", "image": {}}]),
     "restricted", "latest", False),
    ("restricted-volume-types", lambda p: spec(p).update(volumes=[{"name": "v"}]),
     "restricted", "latest", False),
    # Windows HostProcess: pod or container, every version
    ("windows-host-process", set_pod_sc(windowsOptions={"hostProcess": True}), "baseline",
     "v1.0", True),
    ("windows-host-process", set_sc(windowsOptions={"hostProcess": False}), "baseline",
     "latest", False),
    # probe and hook hosts: from 1.34
    ("host-probes", probe_host("readinessProbe"), "baseline", "v1.33", False),
    ("host-probes", probe_host("readinessProbe"), "baseline", "v1.34", True),
    ("host-probes", probe_host("preStop"), "restricted", "latest", True),
    ("host-probes", lambda p: c0(p).update(livenessProbe={"tcpSocket": {"port": 80, "host": ""}}),
     "baseline", "latest", False),
    # restricted controls: off at baseline, and each from its own version
    ("privilege-escalation", unset("allowPrivilegeEscalation"), "restricted", "v1.7", False),
    ("privilege-escalation", unset("allowPrivilegeEscalation"), "restricted", "v1.8", True),
    ("privilege-escalation", unset("allowPrivilegeEscalation"), "baseline", "latest", False),
    ("privilege-escalation", both(unset("allowPrivilegeEscalation"), windows), "restricted",
     "v1.24", True),
    ("privilege-escalation", both(unset("allowPrivilegeEscalation"), windows), "restricted",
     "v1.25", False),
    ("run-as-root", set_sc(runAsUser=0), "restricted", "v1.22", False),
    ("run-as-root", set_sc(runAsUser=0), "restricted", "v1.23", True),
    ("run-as-root", set_sc(runAsNonRoot=False), "restricted", "v1.0", True),
    ("run-as-root", set_sc(runAsNonRoot=False), "baseline", "latest", False),
    ("run-as-root", both(unset("runAsNonRoot"), windows), "restricted", "latest", True),
    ("dangerous-capabilities", set_sc(capabilities={"add": ["CHOWN"]}), "baseline", "latest",
     False),
    ("dangerous-capabilities", set_sc(capabilities={"add": ["SYS_ADMIN"]}), "baseline", "v1.0",
     True),
    ("dangerous-capabilities", set_sc(capabilities={"add": ["CHOWN"]}), "restricted", "v1.21",
     False),
    ("dangerous-capabilities", set_sc(capabilities={"add": ["CHOWN"], "drop": ["ALL"]}),
     "restricted", "v1.22", True),
    ("dangerous-capabilities", both(set_sc(capabilities={}), windows), "restricted", "v1.25",
     False),
    ("dangerous-capabilities", both(set_sc(capabilities={}), windows), "restricted", "v1.24",
     True),
    # seccomp: annotations before 1.19, fields since; restricted requires a profile from 1.19
    ("seccomp-unconfined", annotate("seccomp.security.alpha.kubernetes.io/pod", "unconfined"),
     "baseline", "v1.18", True),
    ("seccomp-unconfined", annotate("seccomp.security.alpha.kubernetes.io/pod", "unconfined"),
     "baseline", "v1.19", False),
    ("seccomp-unconfined", annotate("container.seccomp.security.alpha.kubernetes.io/main",
                                    "docker/default"), "baseline", "v1.0", False),
    ("seccomp-unconfined", set_sc(seccompProfile={"type": "Unconfined"}), "baseline", "v1.18",
     False),
    ("seccomp-unconfined", set_sc(seccompProfile={"type": "Unconfined"}), "baseline", "v1.19",
     True),
    ("seccomp-unconfined", lambda p: psc(p).pop("seccompProfile"), "restricted", "v1.19", True),
    ("seccomp-unconfined", lambda p: psc(p).pop("seccompProfile"), "baseline", "latest", False),
    ("seccomp-unconfined", both(lambda p: psc(p).pop("seccompProfile"), windows), "restricted",
     "v1.25", False),
    ("seccomp-unconfined", set_sc(seccompProfile={"type": "Localhost", "localhostProfile": "p"}),
     "restricted", "latest", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "spoil", "level", "version", "fires"),
    CASES,
    ids=[
        f"{i}-{r}-{lv}-{v}-{'fires' if f else 'quiet'}" for i, (r, _, lv, v, f) in enumerate(CASES)
    ],
)
def test_control_at_level_and_version(
    rule: str, spoil: Mut, level: str, version: str, fires: bool
) -> None:
    pod = clean_pod()
    assert pss_rules(pod, context(level, version)) == set()
    spoil(pod)
    found = pss_rules(pod, context(level, version))
    assert (rule in found) is fires, found


def test_clean_pod_passes_every_version_of_both_levels() -> None:
    pod = clean_pod()
    for minor in range(38):
        for level in ("baseline", "restricted"):
            assert pss_rules(pod, context(level, f"v1.{minor}")) == set(), (level, minor)


def test_new_controls_reach_pod_templates_and_their_annotations() -> None:
    pod = clean_pod()
    c0(pod)["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    dep = deployment(pod)
    dep["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/main": "unconfined"
    }
    found = {(f.rule, f.path) for f in evaluate(dep, context()).findings}
    assert ("host-ports", "spec.template.spec.containers[0].ports[0].hostPort") in found
    assert (
        "apparmor-profile",
        'spec.template.metadata.annotations["container.apparmor.security.beta.kubernetes.io/main"]',
    ) in found


def test_init_and_ephemeral_containers_are_judged() -> None:
    pod = clean_pod()
    init = {"name": "init", "image": c0(pod)["image"], "securityContext": {"procMount": "Unmasked"}}
    spec(pod)["initContainers"] = [init]
    found = {(f.rule, f.path) for f in evaluate(pod, context("baseline")).findings}
    assert ("proc-mount", "spec.initContainers[0].securityContext.procMount") in found


def test_allowed_host_ports_are_the_known_list() -> None:
    pod = clean_pod()
    c0(pod)["ports"] = [{"hostPort": 9100}, {"hostPort": 22}]
    env = {"name": "e", "podSecurity": {"allowedHostPorts": [9100]}}
    ctx = EvalContext.build(load_policy({"environments": [env]}))
    paths = [f.path for f in evaluate(pod, ctx).findings if f.rule == "host-ports"]
    assert paths == ["spec.containers[0].ports[1].hostPort"]


def test_levels_differ_per_environment() -> None:
    policy = load_policy(
        {
            "environments": [
                {"name": "dev", "podSecurity": {"level": "baseline"}},
                {"name": "prod"},
            ]
        }
    )
    pod = clean_pod()
    sc0(pod)["runAsNonRoot"] = False
    dev = EvalContext.build(policy, namespace_env={"team-a": "dev"})
    prod = EvalContext.build(policy, namespace_env={"team-a": "prod"})
    assert "run-as-root" not in pss_rules(pod, dev)
    assert "run-as-root" in pss_rules(pod, prod)


def test_profile_from_policy() -> None:
    ctx = context("baseline", "v1.30")
    profile = ctx.policy.environments["e"].pod_security
    assert profile == PodSecurityProfile(restricted=False, minor=30)
    assert context().policy.environments["e"].pod_security.minor == PSS_LATEST
    # a version newer than any Airlock knows is judged as latest (as PSA does)
    assert context(version="v1.99").policy.environments["e"].pod_security.minor == 99
    assert safe_sysctls(99) == safe_sysctls(PSS_LATEST)


@pytest.mark.parametrize("bad", ["1.30", "v2.0", "v1.030", "newest", ""])
def test_invalid_version_is_refused_with_its_field(bad: str) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy({"environments": [{"name": "e", "podSecurity": {"version": bad}}]})
    assert "environments[0].podSecurity.version" in str(err.value)


def test_invalid_level_is_refused_with_its_field() -> None:
    with pytest.raises(PolicyError) as err:
        load_policy({"environments": [{"name": "e", "podSecurity": {"level": "privileged"}}]})
    assert "environments[0].podSecurity.level" in str(err.value)


ODD = [["x"], {"a": 1}, 7, None, True, "", 1.5]


@pytest.mark.parametrize("odd", ODD, ids=[type(v).__name__ for v in ODD])
def test_untrusted_shapes_in_every_control_never_crash(odd: Any) -> None:
    pod = clean_pod()
    pod["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/main": odd,
        "seccomp.security.alpha.kubernetes.io/pod": odd,
        7: odd,
    }
    sc0(pod).update(
        seccompProfile={"type": odd},
        appArmorProfile={"type": odd},
        seLinuxOptions={"type": odd, "user": odd},
        procMount=odd,
        windowsOptions={"hostProcess": odd},
        capabilities={"add": [odd], "drop": odd},
    )
    psc(pod).update(seccompProfile={"type": odd}, sysctls=[{"name": odd}, odd], appArmorProfile=odd)
    c0(pod).update(ports=[{"hostPort": odd}, odd], livenessProbe={"httpGet": {"host": odd}})
    spec(pod).update(volumes=[{"name": "v", "nfs": odd}, odd], hostUsers=odd, os={"name": odd})
    for minor in (0, 18, 19, 25, 35):
        for level in ("baseline", "restricted"):
            evaluate(pod, context(level, f"v1.{minor}"))  # a verdict, never an exception


def test_messages_never_echo_what_a_manifest_put_where_a_profile_belongs() -> None:
    secret = "hunter2" + "-Zq8vLp3Tk"  # a password someone pasted into the wrong field
    pod = clean_pod()
    pod["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/main": secret,
        "seccomp.security.alpha.kubernetes.io/pod": secret,
    }
    sc0(pod).update(procMount={"token": secret}, seLinuxOptions={"user": f"u {secret}"})
    psc(pod).update(sysctls=[{"name": f"kernel.{secret}!"}])
    c0(pod).update(livenessProbe={"httpGet": {"host": f"{secret}.example:1?x", "port": 80}})
    sc0(pod).update(capabilities={"add": ["SYS_ADMIN", secret]})
    for version in ("v1.0", "latest"):
        findings = evaluate(pod, context("baseline", version)).findings
        assert {f.rule for f in findings} >= {"proc-mount", "selinux-options", "unsafe-sysctls"}
        caps = next(f for f in findings if f.rule == "dangerous-capabilities")
        assert "SYS_ADMIN, a value of 17 characters" in caps.message
        for f in findings:
            assert secret not in f.message, f.rule
