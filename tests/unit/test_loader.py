"""Manifest loading for `airlock scan`: what is read, what is refused, and where errors point."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.errors import InputError
from airlock.scan.loader import (
    MAX_ALIAS_EXPANSION,
    Document,
    describe_error,
    iter_manifest_files,
    load_paths,
    load_text,
    read_text,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    # file names in messages are relative to where the user runs the command
    monkeypatch.chdir(FIXTURES)


def names(docs: list[Document]) -> list[tuple[str, int, int | None, str, str]]:
    return [(d.file, d.index, d.item, d.obj["kind"], d.obj["metadata"]["name"]) for d in docs]


def messages(errors: list[InputError]) -> list[str]:
    return [describe_error(e) for e in errors]


def test_multi_document_file_keeps_1_based_indices_and_start_lines() -> None:
    result = load_paths(["clean.yaml"])
    assert result.errors == []
    assert result.files == 1
    assert names(result.documents) == [
        ("clean.yaml", 1, None, "Deployment", "model-server"),
        ("clean.yaml", 2, None, "Service", "model-server"),
    ]
    # line 1 is a comment: the Deployment starts on line 2, the Service after the separator
    assert [d.line for d in result.documents] == [2, 41]
    assert result.documents[1].location == "clean.yaml, document 2"


def test_every_bad_document_is_reported_with_file_document_and_line() -> None:
    result = load_paths(["broken.yaml", "missing-kind.yaml"])
    assert names(result.documents) == [("broken.yaml", 1, None, "ConfigMap", "first")]
    errors = messages(result.errors)
    assert errors[0] == (
        "broken.yaml, document 2: line 8: expected a Kubernetes object (a mapping), found a list"
    )
    assert errors[1].startswith("broken.yaml, document 3: line 15: mapping values are not allowed")
    assert errors[2:] == [
        "missing-kind.yaml, document 1: line 1: missing kind",
        "missing-kind.yaml, document 2: line 5: missing apiVersion",
    ]
    assert [(e.source, e.document) for e in result.errors] == [
        ("broken.yaml", 2),
        ("broken.yaml", 3),
        ("missing-kind.yaml", 1),
        ("missing-kind.yaml", 2),
    ]


def test_missing_path_and_empty_directory_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = load_paths(["does-not-exist.yaml", str(empty)])
    assert result.documents == []
    assert messages(result.errors) == [
        "does-not-exist.yaml: no such file or directory",
        f"{empty}: no *.yaml, *.yml or *.json files found",
    ]


def test_non_utf8_file_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  name: caf\xe9\n")
    result = load_paths([str(bad)])
    assert result.documents == []
    assert messages(result.errors) == [f"{bad}: not UTF-8 text (byte 48)"]


def test_a_byte_order_mark_is_dropped_and_counted_in_a_bad_byte_offset(tmp_path: Path) -> None:
    marked = tmp_path / "bom.yaml"
    marked.write_bytes(b"\xef\xbb\xbfapiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    result = load_paths([str(marked)])
    assert [d.obj["apiVersion"] for d in result.documents] == ["v1"]
    assert read_text(str(marked)).startswith("apiVersion")
    # one inside the text is text (the one at the start only is a mark)
    inside = tmp_path / "inside.yaml"
    inside.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbfa: 1\n")
    assert read_text(str(inside)) == "\ufeffa: 1\n"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xef\xbb\xbfa: caf\xe9\n")
    assert messages(load_paths([str(bad)]).errors) == [f"{bad}: not UTF-8 text (byte 9)"]


@pytest.mark.parametrize(
    ("text", "line", "code"),
    [
        (
            "apiVersion: v1\nkind: Secret\nstringData:\n  token: ghp_Zx8Kq2\x07Wm9Rt4Lp7\n",
            4,
            "0007",
        ),
        ("\x00\x01binary", 1, "0000"),
        ("a: " + "\u00e9" * 200 + "\nb: 1\nc: 2\nd: 3\ne: x\x07\n", 5, "0007"),  # bytes != chars
        ("a: 1\r\nb: 2\rc: \x07\n", 3, "0007"),
    ],
)
def test_a_character_yaml_does_not_allow_is_named_by_line_and_code(
    text: str, line: int, code: str
) -> None:
    """Never the text around it: the line may hold a credential."""
    docs, errors = load_text(text, "odd.yaml")
    assert docs == []
    message = messages(errors)[0]
    assert message.startswith(f"odd.yaml, document 1: line {line}: character U+{code} ")
    assert "binary file" in message
    assert "ghp_" not in message
    assert "Wm9R" not in message


def test_dangling_link_found_in_a_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing-target.yaml")
    result = load_paths([str(tmp_path)])
    assert result.documents == []
    assert messages(result.errors) == [
        f"{tmp_path / 'gone.yaml'}: cannot read: No such file or directory"
    ]


def test_directory_walk_is_recursive_sorted_and_skips_hidden_and_other_files() -> None:
    assert list(iter_manifest_files("tree")) == [
        os.path.join("tree", "a.yaml"),
        os.path.join("tree", "sub", "b.yml"),
    ]
    result = load_paths(["tree"])
    assert [d.obj["metadata"]["name"] for d in result.documents] == ["tree-a", "tree-b"]
    assert result.files == 2


def test_the_walk_lists_what_os_walk_lists_and_follows_no_linked_directory(
    tmp_path: Path,
) -> None:
    """Linked files are listed, linked directories not followed (a loop would never end),
    hidden ones skipped; the order is os.walk's (a directory's files, then its subdirectories,
    each sorted)."""
    for rel in ("b.yaml", "a.json", "z/c.yml", "z/y/d.yaml", "m/e.YAML", ".h/f.yaml", "g.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    (tmp_path / "z" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "linked.yaml").symlink_to(tmp_path / "z" / "c.yml")
    (tmp_path / "Chart.yaml").write_text("{}")

    def reference(top: str) -> list[str]:
        found = []
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [
                os.path.join(root, f)
                for f in sorted(files)
                if not f.startswith(".") and f.lower().endswith((".yaml", ".yml", ".json"))
                and f not in ("Chart.yaml",)
            ]  # fmt: skip
        return found

    listed = list(iter_manifest_files(str(tmp_path)))
    assert listed == reference(str(tmp_path))
    assert [os.path.relpath(p, tmp_path) for p in listed] == [
        "a.json", "b.yaml", "linked.yaml", "m/e.YAML", "z/c.yml", "z/y/d.yaml",
    ]  # fmt: skip


def test_list_items_are_expanded_with_their_index_and_line() -> None:
    result = load_paths(["list.yaml"])
    assert result.errors == []
    assert names(result.documents) == [
        ("list.yaml", 1, 0, "ConfigMap", "settings"),
        ("list.yaml", 1, 1, "Pod", "listed"),
    ]
    pod = result.documents[1]
    assert pod.line == 11
    assert pod.location == "list.yaml, document 1, items[1]"
    # paths inside an item are relative to the item, not to the List
    assert pod.line_of("spec.containers[0].image") == 19


def test_list_item_problems_name_the_item() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n  - kind: Pod\n  - 42\n"
    docs, errors = load_text(text, "l.yaml")
    assert docs == []
    assert messages(errors) == [
        "l.yaml, document 1: line 4: items[0]: missing apiVersion",
        "l.yaml, document 1: line 5: items[1]: expected a Kubernetes object (a mapping), "
        "found a int",
    ]


def test_helm_template_on_stdin_names_each_template() -> None:
    stdin = io.StringIO((FIXTURES / "helm.yaml").read_text())
    result = load_paths(["-"], stdin=stdin)
    assert result.errors == []
    assert [(d.index, d.source, d.display) for d in result.documents] == [
        (1, "llm/templates/serviceaccount.yaml", "- (llm/templates/serviceaccount.yaml)"),
        # document 2 is empty (a template that rendered nothing): skipped but still counted
        (3, "llm/templates/deployment.yaml", "- (llm/templates/deployment.yaml)"),
    ]
    assert result.documents[1].location == "- (llm/templates/deployment.yaml), document 3"


def test_source_comment_does_not_leak_into_the_next_document() -> None:
    text = (
        "# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
    )
    docs, errors = load_text(text, "-")
    assert errors == []
    assert [d.source for d in docs] == ["c/templates/a.yaml", None]


def test_empty_documents_are_skipped_but_counted() -> None:
    text = "---\n---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    docs, errors = load_text(text, "f.yaml")
    assert errors == []
    assert [(d.index, d.line) for d in docs] == [(3, 5)]


def test_json_file_is_read_as_one_document() -> None:
    result = load_paths(["deploy.json"])
    assert names(result.documents) == [("deploy.json", 1, None, "Pod", "from-json")]


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "apiVersion": "v1",\n  "kind": \n}\n')
    result = load_paths([str(bad)])
    assert messages(result.errors) == [f"{bad}, document 1: line 4: Expecting value"]


def test_json_on_stdin_is_accepted() -> None:
    stdin = io.StringIO('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}')
    result = load_paths(["-"], stdin=stdin)
    assert names(result.documents) == [("-", 1, None, "Pod", "j")]


def test_timestamps_stay_strings_as_the_api_server_sees_them() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata:\n  since: 2026-01-31\n"
    docs, _ = load_text(text, "t.yaml")
    assert docs[0].obj["data"]["since"] == "2026-01-31"


def test_alias_bomb_is_refused_quickly() -> None:
    started = time.perf_counter()
    result = load_paths(["bomb.yaml"])
    assert time.perf_counter() - started < 1.0
    assert result.documents == []
    assert messages(result.errors) == [
        f"bomb.yaml, document 1: line 1: YAML aliases expand this document by more than "
        f"{MAX_ALIAS_EXPANSION} nodes (possible alias bomb); refusing to read it"
    ]


def test_recursive_alias_is_refused() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\ndata: &d {self: *d}\n"
    )
    docs, errors = load_text(text, "loop.yaml")
    assert [d.obj["metadata"]["name"] for d in docs] == ["ok"]
    assert messages(errors) == [
        "loop.yaml, document 2: line 5: recursive YAML alias (a node that contains itself)"
    ]


def test_ordinary_anchors_still_load() -> None:
    result = load_paths(["anchors.yaml"])
    assert result.errors == []
    containers = result.documents[0].obj["spec"]["containers"]
    assert containers[1]["env"] == [
        {"name": "MODE", "value": "fast"},
        {"name": "LEVEL", "value": "3"},
    ]


def test_unknown_tag_is_an_error_and_later_documents_still_load() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: !vault {k: v}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
    )
    docs, errors = load_text(text, "tags.yaml")
    assert [d.obj["metadata"]["name"] for d in docs] == ["b"]
    assert len(errors) == 1
    assert errors[0].document == 1
    assert describe_error(errors[0]).startswith("tags.yaml, document 1: line 4: ")


def test_deeply_nested_document_is_an_error_not_a_crash() -> None:
    depth = 20_000
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * depth
    text += "]" * depth + "\n"
    docs, errors = load_text(text, "deep.yaml")
    assert docs == []
    assert [(e.source, e.document) for e in errors] == [("deep.yaml", 1)]


def test_line_of_follows_the_json_path() -> None:
    deployment = load_paths(["violating.yaml"]).documents[0]
    c0 = "spec.template.spec.containers[0]"
    assert deployment.line_of(f"{c0}.image") == 24
    assert deployment.line_of(f"{c0}.securityContext.privileged") == 26
    # label keys contain dots and slashes: both spellings find the line
    assert deployment.line_of('metadata.labels["airlock.dev/owner"]') == 8
    assert deployment.line_of("metadata.labels.airlock.dev/owner") == 8
    # a path beyond what the manifest has falls back to the deepest field that exists
    assert deployment.line_of("spec.template.spec.containers[5].image") == 22
    assert deployment.line_of("spec.template.spec.initContainers[0]") == 17


def test_line_of_quoted_configmap_key() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n"
        "  plain: x\n  app.properties: |\n    a=b\n"
    )
    docs, _ = load_text(text, "cm.yaml")
    assert docs[0].line_of('data["app.properties"]') == 6
    assert docs[0].line_of("data.plain") == 5


def test_fast_construction_matches_pyyaml() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: types}\n"
        "data:\n  int: 1\n  quoted: '1'\n  float: 1.5\n  bool: true\n  yes11: yes\n"
        "  null: null\n  tilde: ~\n  empty:\n  octal: 0o17\n  hex: 0x1F\n  inf: .inf\n"
        '  str: "true"\n  nested: [1, "2", {a: [off, 3]}]\n  1: int key\n'
        "  block: |\n    line one\n    line two\n"
    )
    docs, errors = load_text(text, "types.yaml")
    assert errors == []
    assert docs[0].obj == yaml.safe_load(text)
    # the resolution cache must not leak between quoted and plain spellings of one value
    again, _ = load_text(text, "types.yaml")
    assert again[0].obj["data"]["quoted"] == "1"
    assert again[0].obj["data"]["int"] == 1


def test_every_fixture_loads_as_pyyaml_would() -> None:
    for path in sorted(FIXTURES.rglob("*.yaml")):
        if path.name in {"bomb.yaml", "broken.yaml", "missing-kind.yaml"}:
            continue
        text = path.read_text()
        docs, _ = load_text(text, path.name)
        expected = [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and "kind" in d]
        flat: list[Any] = []
        for d in expected:
            flat.extend(d["items"] if d["kind"] == "List" else [d])
        assert [d.obj for d in docs] == flat, path.name


def test_merge_keys_fall_back_to_pyyaml_and_keep_lines() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: merged}\nspec:\n"
        "  containers:\n    - &base\n      name: a\n      image: busybox:1.36\n"
        "    - <<: *base\n      name: b\n"
    )
    docs, errors = load_text(text, "merge.yaml")
    assert errors == []
    assert docs[0].obj["spec"]["containers"][1] == {"name": "b", "image": "busybox:1.36"}
    assert docs[0].line_of("spec.containers[1].name") == 10
    assert docs[0].line_of("spec.containers[0].image") == 8
