"""Settings of the admission server: a dataclass of sub-dataclasses, every field documented.

The CLI (``airlock webhook``) fills these from flags and environment variables; tests and the
benchmark build them directly. Defaults are the ones a production install wants, so a test that
overrides nothing tests what users run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AdmissionSettings",
    "MetricsSettings",
    "RegistrySettings",
    "ServerSettings",
    "TLSSettings",
    "WebhookSettings",
]


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """The serving certificate. The API server only talks to webhooks over TLS."""

    cert_file: Path = Path("/etc/airlock/tls/tls.crt")
    """PEM certificate chain (leaf first), as mounted from the webhook Secret."""

    key_file: Path = Path("/etc/airlock/tls/tls.key")
    """PEM private key of the leaf certificate."""

    reload_interval: float = 5.0
    """Seconds between checks of the files' modification times. The controller rotates the
    certificate well before expiry and kubelet updates mounted Secrets within about a minute,
    so a few seconds of polling costs nothing and needs no inotify dependency."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where the admission endpoints listen, and what a request may cost."""

    host: str = "0.0.0.0"  # noqa: S104 - a pod serves its Service on every interface
    """Address to bind. ``0.0.0.0`` in a pod (the Service routes to the pod IP)."""

    port: int = 8443
    """HTTPS port of /validate, /mutate, /healthz and /readyz; 0 picks a free port (tests)."""

    max_body_bytes: int = 3 * 1024 * 1024
    """Largest request body accepted; bigger ones get 413 without being parsed. etcd refuses
    objects over 1.5 MiB and a review carries the object twice (object and oldObject), so 3 MiB
    admits every legitimate review while bounding memory per connection."""

    header_timeout: float = 10.0
    """Seconds a client has to send a request's head (request line and headers): from the start
    of a new connection (the TLS handshake must also finish within this time, and a closing
    connection's TLS shutdown too), or from the first byte of a later request on a keep-alive
    connection. A connection that misses it is closed without an answer, so clients that send a
    byte every few seconds hold nothing for long. The API server writes a review in one go and
    gives up itself after the webhook's ``timeoutSeconds`` (at most 30 s, 5 s in the chart), so
    10 s never cuts off a request it still waits for."""

    body_timeout: float = 10.0
    """Seconds from the end of a request's head to the end of its body; then the connection is
    closed without an answer. Same reasoning as ``header_timeout``: a review of the largest
    object (3 MiB) takes milliseconds on a cluster network."""

    keepalive_timeout: float = 120.0
    """Seconds an idle keep-alive connection stays open. The API server pools connections to
    webhooks and its Go client closes one after 90 s idle; staying open longer means the client
    always closes first. A server that closed a pooled connection just as the API server started
    writing a review on it would fail that review (Go does not retry a POST), and the Pod
    webhook fails closed. Bounded, so abandoned connections do not pile up."""

    max_connections: int = 256
    """Open connections (TLS handshakes in progress included) before new ones are closed at once,
    before any TLS work: each costs about 100 KB, so 256 bound this at about 25 MB. The API
    servers keep a few dozen pooled connections per replica and a review takes milliseconds,
    so legitimate traffic stays far below. At the cap every new connection is refused, the API
    server's too (logged at most once a minute): the cap bounds memory, it does not tell
    clients apart, so who may reach the port at all is for a NetworkPolicy to decide."""

    max_pending_body_bytes: int = 16 * 1024 * 1024
    """Bytes of request bodies being received at once, over all connections: each request
    reserves its ``Content-Length`` (or ``max_body_bytes`` without one) until its body is read.
    A request that does not fit gets 429 at once, unread. With ``max_body_bytes`` alone, slow
    clients sending large bodies on every connection could make the server buffer
    ``max_connections`` times 3 MiB; this bounds it at 16 MiB, room for five reviews of the
    largest objects at the same instant (a normal review is 5-50 KB and read in microseconds).
    Must be at least ``max_body_bytes``."""

    shutdown_timeout: float = 5.0
    """Seconds in-flight requests get to finish when the server stops (rolling update)."""

    drain_seconds: float = 5.0
    """Seconds the server keeps answering after it is told to stop, with ``Connection: close``
    on every answer and ``/readyz`` failing. The API server keeps pooled keep-alive connections
    to each replica; closing them while it writes a review on one fails that review (a Pod
    creation, with the fail-closed Pod webhook). Draining ends each connection cleanly after
    its next answer, so the API server moves to the other replicas first. The chart's
    terminationGracePeriodSeconds leaves room for it (and for the preStop pause before)."""

    unready_wait: float = 3.0
    """Seconds a review that arrives before the initial listings are loaded (``/readyz``
    failing) waits for them, at most until one second before the API server's own deadline
    (the ``timeout`` it puts in the request's URL). If they are still missing the answer is
    HTTP 503, and the API server applies the webhook's failurePolicy: the Pod webhook denies,
    the workload webhook admits. Never judged without them: with no policy yet, every
    namespace would be in audit and a privileged Pod admitted. A Service does not route to a
    pod that is not ready, but a webhook reached by URL, or an API server that retries a call
    as the pod starts listening, can send a review in that window."""


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The plain-HTTP metrics endpoint, on its own port so scraping never needs the TLS cert."""

    enabled: bool = True
    """Serve ``GET /metrics`` at all."""

    host: str = "0.0.0.0"  # noqa: S104 - scraped from other pods
    """Address to bind."""

    port: int = 8080
    """Port of ``GET /metrics``; 0 picks a free port (tests)."""


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """How answers are built."""

    fail_open: bool = False
    """What the validating endpoint answers when Airlock itself fails (a bug in a rule): False
    denies with code 500 (fail closed, the safe choice for a security baseline), True admits with
    an ``airlock internal error`` warning. The mutating endpoint always fails open: its patches
    are conveniences and the validating webhook still checks the result."""

    max_message_lines: int = 30
    """Findings listed in a denial message before "… and N more"."""

    max_message_bytes: int = 4096
    """Bound on a denial message; kubectl prints it whole and it lands in audit logs."""

    max_warning_chars: int = 256
    """Length of one admission warning. The API server may truncate longer ones."""

    max_warnings: int = 50
    """Warnings per response before a final "and N more". The API server drops warnings past
    4096 characters in total (from all webhooks), so more would be lost anyway."""

    max_warnings_bytes: int = 3072
    """Characters of warnings per response, leaving room under the API server's 4096 for other
    webhooks' warnings."""

    enforce_on_metadata_update: bool = False
    """Whether an UPDATE that changes only ``metadata`` can be denied. False (the default) turns
    enforced findings of such updates into warnings, as Pod Security Admission exempts
    metadata-only pod updates: labelling or annotating an object admitted before the policy
    tightened must not be blocked (controllers do it all the time). A change to anything else
    (spec, data, …) is enforced normally."""


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Registry lookups at admission (digest pins, signatures), when the policy asks for them.

    How each registry is reached (mirrors, plain HTTP, CAs, its own timeout) is the policy's
    ``registries``; these bound what one review may cost and what is remembered."""

    budget: float = 3.0
    """Seconds all lookups of one review may take together. The chart gives the webhooks 5 s;
    3 s leaves the engine, the network and a slow API server the rest. Past it the object is
    admitted unpinned (with a warning) and an unanswered signature is "could not be checked"."""

    read_pull_secrets: bool = False
    """Read the pod's ``imagePullSecrets`` and its ServiceAccount's through the API (needs
    ``get`` on Secrets and ServiceAccounts in every namespace). Off: private images are looked
    up anonymously, and stay unpinned when the registry refuses."""

    ca_file: Path | None = None
    """A PEM file of CAs trusted for every registry besides the system's (a cluster-wide
    private CA); per registry, the policy's ``caBundle`` is better."""

    digest_ttl: float = 300.0
    """Seconds a tag's digest is remembered: a tag that moves is pinned to its new digest
    within this time."""

    signature_ttl: float = 3600.0
    """Seconds a digest's signature check is remembered (content never changes; a signature
    pushed later is seen within this time)."""

    cache_entries: int = 4096
    """Digests and signature checks remembered, each (oldest first out)."""


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Everything ``airlock webhook`` needs besides the state the watches keep current."""

    tls: TLSSettings = field(default_factory=TLSSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)

    policy_name: str = "default"
    """The cluster-scoped BaselinePolicy that is in force; others are ignored."""

    fingerprint_key_file: Path | None = None
    """File holding the installation's fingerprint key (the chart mounts its Secret there; the
    controller reads the same one, so a credential has one fingerprint everywhere). None leaves
    fingerprints unkeyed, which lets anyone confirm a guessed weak password from a denial
    message. Only the path is kept here: the key itself is read at start-up and never shown."""
