"""The controller's one seam to the Kubernetes API: credentials, and :class:`Kube` for every call.

:class:`Kube` is how asyncio code calls the synchronous Kubernetes client: in the default
thread pool, with one request timeout, one retry policy and one log line per failure, every
failure raised as one :class:`~airlock.errors.KubeError` carrying the HTTP status. The writers
(PolicyReports, isolation NetworkPolicies, the webhook certificate, exception and policy status,
the peering object) go through it and nothing else; tests hand it an in-memory API object in
place of the client's (``tests/support/kube.py``), the way httpx takes a mock transport.

kopf's own ``login_via_client`` loads the kubernetes client's *global* default configuration and
reads ``$KUBECONFIG``; the webhook, the controller and the tests instead pass a kubeconfig path
(or nothing, meaning in-cluster), so two operators in one test process can talk to different
clusters. Everything here builds a private :class:`kubernetes.client.Configuration`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import kopf
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from airlock.errors import AirlockError, KubeError

__all__ = [
    "CRD_VERSION",
    "REQUEST_TIMEOUT",
    "Kube",
    "api_client",
    "connection_info",
    "load_configuration",
    "register_login",
]

CRD_VERSION: Final = "v1alpha1"
"""The served version of the airlock.dev CRDs (the group is :data:`airlock.model.API_GROUP`)."""

REQUEST_TIMEOUT: Final = 30.0
"""Seconds one API call may take (connect plus read) before it fails with ``KubeError``."""

_TRANSIENT: Final = frozenset({429, 500, 502, 503, 504})

_log = logging.getLogger(__name__)


def load_configuration(kubeconfig: str | None) -> client.Configuration:
    """A client configuration from ``kubeconfig``, or in-cluster when it is None.

    Without a path, the pod's service account is tried first and then the usual kubeconfig
    lookup (``$KUBECONFIG``, ``~/.kube/config``), so ``airlock controller`` also runs from a
    laptop. Called again on every kopf re-login, which re-reads a rotated service-account token.
    """
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration, persist_config=False
            )
            return configuration
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration, persist_config=False
            )
    except (config.ConfigException, OSError) as exc:
        where = kubeconfig or "the pod's service account, $KUBECONFIG or ~/.kube/config"
        raise AirlockError(f"no usable Kubernetes credentials in {where}: {exc}") from None
    return configuration


def connection_info(
    configuration: client.Configuration, *, default_namespace: str | None = None
) -> kopf.ConnectionInfo:
    """kopf's view of the same credentials.

    ``default_namespace`` is where kopf posts Kubernetes Events about cluster-scoped objects
    (a BaselinePolicy), since an Event must live in some namespace.
    """
    # The client keeps a bearer token under "BearerToken" (newer) or "authorization" (older).
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme: str | None = None
    token: str | None = None
    if header:
        first, _, rest = str(header).partition(" ")
        scheme, token = (first, rest) if rest else (None, first)
    return kopf.ConnectionInfo(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file or None,
        private_key_path=configuration.key_file or None,
        default_namespace=default_namespace,
    )


def api_client(kubeconfig: str | None) -> client.ApiClient:
    """A Kubernetes API client with its own configuration (never the global default)."""
    return client.ApiClient(load_configuration(kubeconfig))


def register_login(
    registry: kopf.OperatorRegistry,
    kubeconfig: str | None,
    *,
    default_namespace: str | None = None,
) -> None:
    """Make ``registry``'s operator log in with ``kubeconfig`` (or in-cluster)."""

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        # Sync on purpose: kopf runs it in a thread, and loading reads files.
        _log.debug("logging in from %s", kubeconfig or "the in-cluster service account")
        return connection_info(load_configuration(kubeconfig), default_namespace=default_namespace)


class Kube:
    """Async calls to the Kubernetes API: one timeout, one retry policy, one error type.

    Built on an :class:`kubernetes.client.ApiClient` (the controller's), or on API objects given
    directly (``custom=``, ``core=``, ``admission=``: a test's in-memory fake, or the client's
    own ``*Api`` classes). Each group's API object is made on first use.

    Retries: a call is repeated up to ``retries`` times when no answer came or the answer was
    429/5xx, ``retry_delay`` seconds apart. The default is 0 because every caller is a loop
    that re-plans from the watch on its next pass (the audit, the certificate check, the
    exception sweep); a retry inside a pass would only hold the pass up. Change it here.
    """

    def __init__(
        self,
        api: client.ApiClient | None = None,
        *,
        custom: Any | None = None,
        core: Any | None = None,
        admission: Any | None = None,
        timeout: float = REQUEST_TIMEOUT,
        retries: int = 0,
        retry_delay: float = 0.5,
    ) -> None:
        self.api = api
        self._custom = custom
        self._core = core
        self._admission = admission
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay

    @property
    def custom(self) -> Any:
        """``CustomObjectsApi``: the airlock.dev CRDs, PolicyReports, NetworkPolicies, peering."""
        if self._custom is None:
            self._custom = client.CustomObjectsApi(self._client())
        return self._custom

    @property
    def core(self) -> Any:
        """``CoreV1Api``: the webhook certificate's Secret."""
        if self._core is None:
            self._core = client.CoreV1Api(self._client())
        return self._core

    @property
    def admission(self) -> Any:
        """``AdmissionregistrationV1Api``: the webhook configurations' caBundle."""
        if self._admission is None:
            self._admission = client.AdmissionregistrationV1Api(self._client())
        return self._admission

    def _client(self) -> client.ApiClient:
        if self.api is None:
            raise AirlockError("this Kube was built without an ApiClient")
        return self.api

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, a method of one of the API objects, in a worker thread.

        ``_request_timeout`` defaults to :attr:`timeout`. Raises :class:`KubeError` for an
        error answer or none at all; what a 404 or a 409 means is the caller's business.
        """
        kwargs.setdefault("_request_timeout", self.timeout)
        verb = getattr(fn, "__name__", "call")
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except ApiException as exc:
                error = KubeError(exc.status, str(exc.reason), str(exc.body or ""))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error = KubeError(None, type(exc).__name__)
            if attempt >= self.retries or error.status not in (None, *_TRANSIENT):
                _log.debug("%s failed: %s", verb, error)
                raise error
            attempt += 1
            _log.debug("%s failed: %s; retry %d of %d", verb, error, attempt, self.retries)
            await asyncio.sleep(self.retry_delay)
