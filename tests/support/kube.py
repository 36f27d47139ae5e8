"""The one fake of the Kubernetes API for unit tests, at the controller's seam.

:class:`airlock.controller.kube.Kube` takes the client's API objects; :class:`FakeApi` stands in
for ``CustomObjectsApi`` with an in-memory store that stamps resourceVersions and answers 404 and
409 as the API server does.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from airlock.controller.kube import Kube
from kubernetes.client.exceptions import ApiException

__all__ = ["FakeApi", "fake_kube", "writes"]


class FakeApi:
    """The CustomObjectsApi calls the controller's writers make, on an in-memory store.

    Hand it to the seam as ``Kube(custom=FakeApi())`` (or use :func:`fake_kube`): the code under
    test then runs through the real :class:`~airlock.controller.kube.Kube` (thread, timeout,
    error translation), and only the API server is replaced.
    """

    def __init__(self, *, crd: bool = True) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.crd = crd
        self.rv = 0
        self.status_patches: list[dict[str, Any]] = []

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("uid", str(uuid.uuid4()))
        return obj

    def list_cluster_custom_object(self, *args: Any, **kw: Any) -> Any:
        assert args == ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert kw["field_selector"] == "metadata.name=policyreports.wgpolicyk8s.io"
        self.calls.append(("list-crds", "", ""))
        crd = {"spec": {"versions": [{"name": "v1alpha2", "served": True}]}}
        return {"items": [crd] if self.crd else []}

    def patch_cluster_custom_object_status(self, *args: Any, **kw: Any) -> Any:
        _group, _version, plural, name, body = args
        assert kw.get("_content_type") == "application/merge-patch+json"
        self.calls.append(("patch-status", name, plural))
        self.status_patches.append(copy.deepcopy(body))
        return {}

    def create_namespaced_custom_object(self, *args: Any, **_: Any) -> Any:
        _group, _version, ns, plural, body = args
        self.calls.append(("create", ns, plural))
        key = (plural, ns, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="Conflict")
        self.objects[key] = self._stamp(body)
        return copy.deepcopy(self.objects[key])

    def get_namespaced_custom_object(self, *args: Any, **_: Any) -> Any:
        _group, _version, ns, plural, name = args
        self.calls.append(("get", ns, plural))
        return copy.deepcopy(self.objects[(plural, ns, name)])

    def replace_namespaced_custom_object(self, *args: Any, **_: Any) -> Any:
        _group, _version, ns, plural, name, body = args
        self.calls.append(("replace", ns, plural))
        current = self.objects[(plural, ns, name)]
        assert body["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
        self.objects[(plural, ns, name)] = self._stamp(body)
        return copy.deepcopy(self.objects[(plural, ns, name)])

    def delete_namespaced_custom_object(self, *args: Any, **_: Any) -> Any:
        _group, _version, ns, plural, name = args
        self.calls.append(("delete", ns, plural))
        if self.objects.pop((plural, ns, name), None) is None:
            raise ApiException(status=404, reason="Not Found")
        return {}

    def patch_namespaced_custom_object(self, *args: Any, **kw: Any) -> Any:
        _group, _version, ns, plural, name, body = args
        self.calls.append(("patch", ns, plural))
        obj = self.objects[(plural, ns, name)]
        assert kw.get("_content_type") == "application/json-patch+json"
        for op in body:
            assert op["op"] == "replace"
            assert op["path"] == "/spec"
            obj["spec"] = copy.deepcopy(op["value"])
        self.objects[(plural, ns, name)] = self._stamp(obj)
        return copy.deepcopy(self.objects[(plural, ns, name)])


def writes(api: FakeApi) -> list[tuple[str, str]]:
    return [(verb, ns) for verb, ns, _ in api.calls if verb in ("create", "replace", "delete")]


def fake_kube(api: FakeApi | None = None) -> tuple[Kube, FakeApi]:
    """A :class:`Kube` on ``api`` (a new :class:`FakeApi` by default), and the fake."""
    api = api if api is not None else FakeApi()
    return Kube(custom=api), api
