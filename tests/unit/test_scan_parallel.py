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
from airlock.scan import (
    Renderer,
    entry_report,
    format_json,
    format_sarif,
    list_inputs,
    parallel,
    scan_inputs,
)
from airlock.scan.parallel import batches, map_shares, map_staged
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


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the workers this test forks (os.fork recorded in the parent)."""
    pids: list[int] = []
    fork = os.fork

    def recording_fork() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording_fork)
    return pids


class _Staged:
    """read/judge/context/adopt for map_staged that record where and when each ran."""

    def __init__(self, context_seconds: float) -> None:
        self.parent = os.getpid()
        self.context_seconds = context_seconds
        self.context_runs = 0
        self.handed: bool | None = None
        self.adopted: tuple[bytes, float] | None = None

    def read(self, i: int) -> tuple[int, float]:
        return os.getpid(), time.monotonic()

    def context(self, hand: bool) -> bytes:
        self.context_runs += 1
        self.handed = hand
        time.sleep(self.context_seconds)  # gathering the context takes a while
        self.adopted = (b"ctx" * 30_000, time.monotonic())  # more than a pipe holds
        return b"ctx" * 30_000

    def adopt(self, payload: bytes) -> None:
        self.adopted = (payload, time.monotonic())

    def judge(self, i: int, got: tuple[int, float]) -> tuple[int, int, float, bytes, float]:
        assert self.adopted is not None, "judged before the context was known"
        return i, got[0], got[1], self.adopted[0], self.adopted[1]


def test_workers_read_ahead_while_the_context_is_gathered_and_judge_with_it() -> None:
    staged = _Staged(context_seconds=0.3)
    sizes = [parallel.MIN_PARALLEL_BYTES] * 8
    out = map_staged(
        staged.read, staged.judge, sizes, 2, context=staged.context, adopt=staged.adopt
    )
    assert [row[0] for row in out] == list(range(8))
    assert all(row[3] == b"ctx" * 30_000 for row in out)
    assert staged.context_runs == 1  # in this process only
    ahead = [row for row in out if row[1] != staged.parent and row[2] < row[4]]
    assert ahead, "no worker read an input before the context reached it"


def test_without_memory_files_the_context_is_gathered_before_the_workers_fork(
    monkeypatch: pytest.MonkeyPatch, forked: list[int]
) -> None:
    monkeypatch.delattr(os, "memfd_create")  # never a file on disk: it may hold lent secrets
    staged = _Staged(context_seconds=0)
    sizes = [parallel.MIN_PARALLEL_BYTES] * 6
    out = map_staged(staged.read, staged.judge, sizes, 3, context=staged.context, adopt=print)
    assert [row[0] for row in out] == list(range(6))
    assert forked
    assert staged.context_runs == 1
    assert staged.handed is False
    assert all(row[3] == b"ctx" * 30_000 for row in out)  # inherited by the workers


def test_a_serial_run_gathers_the_context_first_and_adopts_nothing() -> None:
    staged = _Staged(context_seconds=0)
    out = map_staged(
        staged.read, staged.judge, [10] * 3, 4, context=staged.context, adopt=staged.adopt
    )
    assert staged.context_runs == 1
    assert {row[1] for row in out} == {staged.parent}


def test_a_context_that_fails_stops_the_workers_and_is_raised(forked: list[int]) -> None:

    def context(_hand: bool) -> bytes:
        time.sleep(0.1)
        raise ValueError("unknown environment")

    with pytest.raises(ValueError, match="unknown environment"):
        map_staged(
            lambda i: i,
            lambda i, r: r,
            [parallel.MIN_PARALLEL_BYTES] * 4,
            3,
            context=context,
            adopt=print,
        )
    assert len(forked) == 2
    for pid in forked:  # killed and reaped: no worker left behind
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_worker_gone_before_the_context_has_its_share_judged_here() -> None:
    parent = os.getpid()

    def read(i: int) -> int:
        if os.getpid() != parent:
            os._exit(9)
        return i

    def context(_hand: bool) -> bytes:
        time.sleep(0.2)  # the worker is gone when the context is sent
        return b"x" * 200_000

    sizes = [parallel.MIN_PARALLEL_BYTES] * 5
    out = map_staged(read, lambda i, r: r * 2, sizes, 2, context=context, adopt=print)
    assert out == [i * 2 for i in range(5)]


def reports(paths: list[str], jobs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    result = scan_inputs(
        list_inputs(paths), evaluate, policy=load_policy(POLICY_ENVS), now=NOW, jobs=jobs
    )
    return json.loads(format_json(result)), json.loads(format_sarif(result, RULE_INFO))


def json_report(paths: list[str], jobs: int, render: Renderer | None) -> str:
    policy = load_policy(POLICY_ENVS)
    return format_json(
        scan_inputs(list_inputs(paths), evaluate, policy=policy, now=NOW, jobs=jobs, render=render)
    )


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
    # the JSON report encoded by the workers, object by object, is the same text
    assert json_report(paths, 3, entry_report) == json_report(paths, 1, None)
    assert serial[0]["findings"]
    if where == "tree":
        assert TOKEN not in json.dumps(forked)
        # context from a later file reached a workload judged in another process
        assert any(f["rule"] == "plaintext-secret-configmap" for f in forked[0]["findings"])


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_named_twice_reports_as_its_findings_sort(
    jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file named twice gives two objects of one file, document and item: the report
    interleaves their findings by path, as one sort of them all does, not object after object."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.chdir(FIXTURES)
    paths = ["violating.yaml", "violating.yaml"]
    encoded = json_report(paths, jobs, entry_report)
    assert encoded == json_report(paths, jobs, None)
    rows = [
        (f["file"], f["document"], f.get("item", -1), f["path"], f["rule"])
        for f in json.loads(encoded)["findings"]
    ]
    assert rows == sorted(rows)
    assert len(rows) > len(set(rows)) > 1  # each finding twice


def test_more_inputs_than_the_task_pipe_holds_are_grouped_and_all_judged() -> None:
    n = 3 * parallel._MAX_TASKS + 7
    out = map_shares(lambda i: i * 2, [parallel.MIN_PARALLEL_BYTES // n + 1] * n, 2)
    assert out == [i * 2 for i in range(n)]


def test_what_a_worker_hands_back_pickles_whole_and_by_its_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pickle

    from airlock.findings import Finding
    from airlock.records import fields

    monkeypatch.chdir(FIXTURES)
    result = scan_inputs(list_inputs(["."]), evaluate, policy=load_policy(POLICY_ENVS), now=NOW)
    entries = [e for e in result.entries if e.verdict.findings]
    assert entries
    assert pickle.loads(pickle.dumps(entries, pickle.HIGHEST_PROTOCOL)) == entries  # noqa: S301
    finding = entries[0].verdict.findings[0]
    # one constructor call with every field, not a per-field state
    build, values = finding.__reduce__()  # type: ignore[misc]
    assert len(values) == len(fields(Finding))
    assert build(*values) == finding
    doc = entries[0].document
    assert type(doc).__reduce__(doc)[1][0] == doc.file


def test_a_workers_results_are_one_pickle_stream_read_whole_or_not_at_all() -> None:
    """A worker pickles each result as it is judged, into one stream whose memo is shared (a
    rule's texts once), and marks its end: the parent reads every result back, and a stream cut
    anywhere before the mark, between two pickles too, gives none."""
    import io
    import pickle

    shared = "the fix of a rule, the same object in every finding: " + "x" * 200
    buf = io.BytesIO()
    dump = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL).dump
    for i in range(5):
        dump((i, [shared, f"finding {i}"]))
    whole = buf.getvalue()
    dump(None)
    data = buf.getvalue()
    assert data.count(shared.encode()) == 1  # written once, referred to after
    back = parallel._results(pickle.Unpickler(io.BytesIO(data)))  # noqa: S301
    assert back == {i: [shared, f"finding {i}"] for i in range(5)}
    for cut in range(len(whole) + 1):  # every cut, at a pickle's end included
        with pytest.raises(Exception):  # noqa: B017, PT011 - any unpickling error will do
            parallel._results(pickle.Unpickler(io.BytesIO(data[:cut])))  # noqa: S301


def test_a_healthy_workers_results_are_used_not_judged_again(tmp_path: Path) -> None:
    """Every input is judged once, wherever: each worker's results all come back through its
    stream (a result dropped on the way would be judged again here, and counted twice)."""
    log = tmp_path / "judged"

    def work(i: int) -> int:
        time.sleep(0.05)  # long enough that every worker draws some
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, f"{i} {os.getpid()}\n".encode())  # one short append: atomic
        finally:
            os.close(fd)
        return os.getpid()

    out = map_shares(work, [parallel.MIN_PARALLEL_BYTES] * 8, 3)
    judged = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(i) for i, _pid in judged) == list(range(8))  # once each
    assert {int(pid) for _i, pid in judged} == set(out)
    assert len(set(out)) > 1  # and not all here


def test_a_result_that_does_not_pickle_is_judged_here() -> None:
    import threading

    parent = os.getpid()

    def work(i: int) -> object:
        time.sleep(0.02)
        return threading.Lock() if os.getpid() != parent else i  # a lock does not pickle

    assert map_shares(work, [parallel.MIN_PARALLEL_BYTES] * 6, 2) == list(range(6))


def test_short_of_file_descriptors_a_scan_forks_fewer_workers_or_none() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    staged = _Staged(context_seconds=0.05)
    sizes = [parallel.MIN_PARALLEL_BYTES] * 30
    try:
        for spare in (12, 4, 1):  # descriptors left for pipes: a few workers, one, none
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + spare, hard)
            )
            out = map_staged(
                staged.read, staged.judge, sizes, 20, context=staged.context, adopt=staged.adopt
            )
            assert [row[0] for row in out] == list(range(30))
            assert all(row[3] == b"ctx" * 30_000 for row in out)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_parent_holds_one_descriptor_per_worker_and_a_few_more() -> None:
    counted: list[int] = []

    def context(_hand: bool) -> bytes:
        counted.append(len(os.listdir("/proc/self/fd")))
        return b"ctx"

    before = len(os.listdir("/proc/self/fd"))
    sizes = [parallel.MIN_PARALLEL_BYTES] * 40
    out = map_staged(lambda i: i, lambda i, r: r, sizes, 17, context=context, adopt=print)
    assert out == list(range(40))
    assert counted[0] - before <= 16 + 4  # 16 workers' results, the task pipe, the context's 3
    assert len(os.listdir("/proc/self/fd")) == before  # all closed again


def test_where_sigchld_is_ignored_the_workers_results_still_count() -> None:
    import signal

    before = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the system reaps the workers
    try:
        out = map_shares(lambda i: (i, os.getpid()), [parallel.MIN_PARALLEL_BYTES] * 6, 3)
    finally:
        signal.signal(signal.SIGCHLD, before)
    assert [i for i, _pid in out] == list(range(6))


def test_interrupted_while_collecting_no_worker_is_left_behind(
    monkeypatch: pytest.MonkeyPatch, forked: list[int]
) -> None:
    parent = os.getpid()
    real_fdopen = os.fdopen

    def interrupted_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() == parent:  # the parent, collecting a worker's results
            raise KeyboardInterrupt
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", interrupted_fdopen)

    def work(i: int) -> int:
        if os.getpid() != parent:
            time.sleep(5)  # a worker still busy when the parent is interrupted
        return i

    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(KeyboardInterrupt):
        map_shares(work, [parallel.MIN_PARALLEL_BYTES] * 4, 3)
    assert len(forked) == 2
    for pid in forked:  # killed and reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_worker_whose_parent_is_gone_stops() -> None:
    tasks = [[0], [1], [2]]
    r, w = os.pipe()
    os.write(w, b"".join(t.to_bytes(4, "little") for t in range(3)))
    os.close(w)
    try:
        with pytest.raises(SystemExit):
            parallel._drain(r, tasks, lambda i: i, parent=os.getppid() + 1)  # not its parent
        assert parallel._drain(r, tasks, lambda i: i, parent=os.getppid()) == {0: 0, 1: 1, 2: 2}
    finally:
        os.close(r)


def test_without_a_standard_output_the_scan_still_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "stdout", None)  # pythonw, or a daemon's closed streams
    before = len(os.listdir("/proc/self/fd"))
    out = map_shares(lambda i: i * 2, [parallel.MIN_PARALLEL_BYTES] * 4, 2)
    assert out == [0, 2, 4, 6]
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_worker_hands_back_only_what_the_caller_reads_of_its_results() -> None:
    parent = os.getpid()

    def judge(i: int, _r: object) -> tuple[int, int]:
        if os.getpid() == parent:
            time.sleep(0.05)  # the workers draw some
        return i, os.getpid()

    out = map_staged(
        lambda i: i, judge, [parallel.MIN_PARALLEL_BYTES] * 6, 3, hand=lambda r: (r[0], -1)
    )
    assert [i for i, _who in out] == list(range(6))
    # what workers judged comes back as ``hand`` made it; what this process judged as it was
    whos = {who for _i, who in out}
    assert -1 in whos
    assert whos <= {parent, -1}
    serial = map_staged(lambda i: i, judge, [1] * 3, 1, hand=lambda r: (r[0], -1))
    assert serial == [(i, parent) for i in range(3)]


def _slow_here(parent: int) -> Any:
    def judged(obj: Any, ctx: Any) -> Any:
        if os.getpid() == parent:
            time.sleep(0.05)  # the workers judge some of the files
        return evaluate(obj, ctx)

    return judged


@pytest.mark.parametrize("twice", [False, True])
def test_workers_hand_back_what_the_report_reads_unless_a_file_is_named_twice(
    twice: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON report encoded in the workers needs of their objects only the lines, the order and
    each finding's action and exemption (the summary, the exit code): that is all they hand back.
    A file named twice has its objects' lines encoded again, together: then they hand back all."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    write_tree(tmp_path)
    files = sorted(str(p) for p in tmp_path.rglob("*.yaml"))
    paths = files + files[:2] if twice else files
    policy = load_policy(POLICY_ENVS)

    def scan(jobs: int, judged: Any) -> Any:
        return scan_inputs(
            list_inputs(paths), judged, policy=policy, now=NOW, jobs=jobs, render=entry_report
        )

    forked = scan(3, _slow_here(os.getpid()))
    serial = scan(1, evaluate)
    assert format_json(forked) == format_json(serial)
    stand_ins = [f for e in forked.entries for f in e.verdict.findings if not f.rule]
    assert bool(stand_ins) is not twice
    assert json.loads(format_json(forked))["summary"]["findings"]["exempted"]
