"""Credentials for kopf and the Kubernetes client, from one explicit source.

kopf's own ``login_via_client`` loads the kubernetes client's *global* default configuration and
reads ``$KUBECONFIG``; the webhook, the controller and the tests instead pass a kubeconfig path
(or nothing, meaning in-cluster), so two operators in one test process can talk to different
clusters. Everything here builds a private :class:`kubernetes.client.Configuration`.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import kopf
from kubernetes import client, config

from airlock.errors import AirlockError

__all__ = [
    "CRD_VERSION",
    "api_client",
    "connection_info",
    "load_configuration",
    "register_login",
]

CRD_VERSION: Final = "v1alpha1"
"""The served version of the airlock.dev CRDs (the group is :data:`airlock.model.API_GROUP`)."""

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
