"""A scan judged in forked processes reports exactly what a serial scan reports.

The workers are real forked processes (``os.fork``), the results come back through real pipes;
a worker that dies has its share judged again by the parent.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from airlock.engine import evaluate
from airlock.model import load_policy
from airlock.rules import RULE_INFO
from airlock.scan import format_json, format_sarif, list_inputs, parallel, scan_inputs
from airlock.scan.parallel import batches, map_shares
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_scan_stream import FIXTURES, NOW, POLICY_ENVS, TOKEN, write_tree

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


@given(st.lists(st.integers(0, 10_000), max_size=60), st.integers(1, 7))
def test_tasks_cover_every_input_once_largest_first(sizes: list[int], cap: int) -> None:
    import airlock.scan.parallel as par

    old = par._MAX_TASKS
    par._MAX_TASKS = cap  # as if the pipe held only this many tasks
    try:
        tasks = batches(sizes)
    finally:
        par._MAX_TASKS = old
    assert sorted(i for t in tasks for i in t) == list(range(len(sizes)))
    assert len(tasks) <= cap
    weights = [sum(sizes[i] for i in t) for t in tasks]
    assert weights == sorted(weights, reverse=True)


def test_work_runs_in_other_processes_and_comes_back_in_order() -> None:
    def work(i: int) -> tuple[int, int]:
        time.sleep(0.05)  # long enough that every worker draws some
        return i, os.getpid()

    out = map_shares(work, [parallel.MIN_PARALLEL_BYTES] * 6, 3)
    assert [i for i, _pid in out] == list(range(6))
    assert len({pid for _i, pid in out}) > 1


def test_small_inputs_stay_in_this_process() -> None:
    parent = os.getpid()
    out = map_shares(lambda i: os.getpid(), [10] * 4, 4)
    assert out == [parent] * 4


def test_a_worker_that_dies_has_its_share_judged_by_the_parent() -> None:
    parent = os.getpid()

    def work(i: int) -> int:
        if os.getpid() != parent:
            os._exit(9)  # a worker killed mid-share (OOM killer, a signal)
        return i * i

    assert map_shares(work, [parallel.MIN_PARALLEL_BYTES] * 5, 2) == [i * i for i in range(5)]


def test_a_worker_whose_work_raises_is_retried_here_and_the_error_is_ours() -> None:
    parent = os.getpid()

    def work(i: int) -> int:
        if i == 0:
            raise ValueError("input 0 is bad everywhere")
        return i if os.getpid() == parent else -i  # children's answers are discarded anyway

    with pytest.raises(ValueError, match="input 0"):
        map_shares(work, [parallel.MIN_PARALLEL_BYTES] * 4, 2)


def reports(paths: list[str], jobs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    result = scan_inputs(
        list_inputs(paths), evaluate, policy=load_policy(POLICY_ENVS), now=NOW, jobs=jobs
    )
    return json.loads(format_json(result)), json.loads(format_sarif(result, RULE_INFO))


@pytest.mark.parametrize("where", ["fixtures", "tree"])
def test_parallel_scan_reports_what_the_serial_scan_reports(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    if where == "tree":
        write_tree(tmp_path)
        for n in range(6):  # more files than workers, with context in a late one
            (tmp_path / f"c{n}.yaml").write_text((FIXTURES / "violating.yaml").read_text())
        paths = [str(tmp_path)]
    else:
        monkeypatch.chdir(FIXTURES)
        paths = ["."]
    serial = reports(paths, 1)
    forked = reports(paths, 3)
    assert forked == serial
    assert serial[0]["findings"]
    if where == "tree":
        assert TOKEN not in json.dumps(forked)
        # context from a later file reached a workload judged in another process
        assert any(f["rule"] == "plaintext-secret-configmap" for f in forked[0]["findings"])


def test_more_inputs_than_the_task_pipe_holds_are_grouped_and_all_judged() -> None:
    n = 3 * parallel._MAX_TASKS + 7
    out = map_shares(lambda i: i * 2, [parallel.MIN_PARALLEL_BYTES // n + 1] * n, 2)
    assert out == [i * 2 for i in range(n)]


def test_what_a_worker_hands_back_pickles_whole_and_by_its_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pickle

    from airlock.findings import Finding

    monkeypatch.chdir(FIXTURES)
    result = scan_inputs(list_inputs(["."]), evaluate, policy=load_policy(POLICY_ENVS), now=NOW)
    entries = [e for e in result.entries if e.verdict.findings]
    assert entries
    assert pickle.loads(pickle.dumps(entries, pickle.HIGHEST_PROTOCOL)) == entries  # noqa: S301
    finding = entries[0].verdict.findings[0]
    # one constructor call with every field, not the slotted dataclass's per-field state
    build, values = finding.__reduce__()  # type: ignore[misc]
    assert len(values) == len(Finding.__dataclass_fields__)
    assert build(*values) == finding
    doc = entries[0].document
    assert type(doc).__reduce__(doc)[1][0] == doc.file
