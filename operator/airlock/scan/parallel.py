"""Judging a scan's files on several cores: forked workers, results back through pipes.

A scan is CPU-bound Python (parsing, rules, detectors), so threads would take turns; processes
do not. The workers are forked with the imported modules and the compiled policy in memory,
before the parent gathers the scan's context (the ConfigMaps, Namespaces, exceptions and RBAC
objects among the files): meanwhile they read and parse the files they draw, and judge them once
the context (a small pickle of what the files lent) reaches them through a pipe. The files wait
in one pipe, largest first, as 4-byte indices: each worker (the parent is one of them) reads the
next index when it is free, so a worker that drew heavy files takes fewer of them. A child writes
back what a report keeps of its files (:class:`~airlock.scan.result.ScanEntry` stubs, never
whole objects), each pickled as soon as it is judged into one stream, so the parent does not wait
for a whole share to be pickled at the end (the stream is held while the worker goes on judging:
a few megabytes for thousands of findings).

Nothing is lost: the files a worker took and did not hand back (it failed, or was killed) are
judged again by the parent, so the report is the same as a serial scan's, in the same order.
Where ``os.fork`` does not exist, or for small inputs where a fork costs more than it saves, the
scan stays serial.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = [
    "MIN_PARALLEL_BYTES",
    "PREFETCH_BYTES",
    "default_jobs",
    "forks",
    "map_shares",
    "map_staged",
]

MIN_PARALLEL_BYTES = 1 << 18
"""Below this much input (all files together) a scan stays serial: a fork and handing results
back cost a few milliseconds per worker, judging 256 KB of manifests about 0.1 s."""

_TASK = 4  # bytes per index in the task pipe: reads this small are never split
# A write of at most PIPE_BUF (4 KiB) into an empty pipe never blocks, even where the system
# gives new pipes a single page (a user over fs.pipe-user-pages-soft): so at most 1,024 tasks,
# neighbouring files grouped when there are more
_MAX_TASKS = 4096 // _TASK

PREFETCH_BYTES = 4 << 20
"""Input a worker reads ahead (per worker) while the parent is still gathering the context: the
parsed objects of that much input are held until the context arrives."""

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def batches(sizes: Sequence[int]) -> list[list[int]]:
    """The tasks: indices of ``sizes`` largest first, one per task, or grouped (neighbours
    together) when there are more inputs than the task pipe holds."""
    n = len(sizes)
    if not n:
        return []
    per = -(-n // _MAX_TASKS)  # ceiling
    groups = [list(range(i, min(i + per, n))) for i in range(0, n, per)]
    groups.sort(key=lambda g: -sum(sizes[i] for i in g))
    return groups


def forks(sizes: Sequence[int], jobs: int) -> bool:
    """Whether :func:`map_shares` would use more than this process."""
    return jobs > 1 and len(sizes) > 1 and sum(sizes) >= MIN_PARALLEL_BYTES and hasattr(os, "fork")


def map_shares(work: Callable[[int], T], sizes: Sequence[int], jobs: int) -> list[T]:
    """``[work(i) for i in range(len(sizes))]``, computed by up to ``jobs`` processes.

    ``work`` runs in forked children, so it may use anything the parent holds; what it returns
    must pickle, and must not change once returned (a worker pickles it then, and objects it
    pickled before are written again only as references). Serial when ``jobs`` is 1, when there
    is one input, when the inputs total less than :data:`MIN_PARALLEL_BYTES`, or when the
    platform cannot fork.
    """
    return map_staged(_nothing, lambda i, _r: work(i), sizes, jobs)


def _nothing(_: object) -> None:
    return None


def map_staged(
    read: Callable[[int], R],
    judge: Callable[[int, R], T],
    sizes: Sequence[int],
    jobs: int,
    *,
    context: Callable[[bool], bytes] | None = None,
    adopt: Callable[[bytes], None] = _nothing,
    hand: Callable[[T], T] | None = None,
) -> list[T]:
    """``context(...)``, then ``[judge(i, read(i)) for i in range(len(sizes))]``, computed by up
    to ``jobs`` processes (serial in the cases :func:`map_shares` names).

    The workers fork before ``context(True)`` runs in this process, and ``read`` (which needs no
    context: reading and parsing a file) what they draw meanwhile, up to
    :data:`PREFETCH_BYTES` of input each and never more than their share of all of it. The
    bytes ``context(True)`` returns reach each worker, which hands them to ``adopt`` (to build
    the same context) before it judges anything. So the cores are busy while the context is
    gathered, instead of waiting for it. ``context(False)`` (serial, or no memory-backed file to
    hand the context over in) runs before any fork: workers, if any, inherit what it built.

    The context travels in an anonymous memory file all workers share, announced by closing the
    one pipe they all watch: whatever ``jobs`` is, this process holds one descriptor per worker
    (its results) and three more. So ``context()`` must not fork a process that outlives it (it
    would hold that pipe open), and two maps must not run at once in threads of one process.

    ``hand`` is what a worker makes of each result before handing it back (what this process
    will read of it, when that is less to pickle and rebuild); results judged here, in this
    process, are returned as they are.
    """
    n = len(sizes)
    if not forks(sizes, jobs):
        if context is not None:
            context(False)
        return [judge(i, read(i)) for i in range(n)]
    import io

    def work(i: int) -> T:
        return judge(i, read(i))

    def judged(i: int, got: R) -> T:  # what a worker judged, as it hands it back
        return judge(i, got) if hand is None else hand(judge(i, got))

    for stream in (sys.stdout, sys.stderr):  # no buffered output copied into the workers
        if stream is not None:
            stream.flush()
    tasks = batches(sizes)
    shared = _shared_descriptors(len(tasks), staged=context is not None)
    if shared is None:  # out of file descriptors: judge here, one input after another
        if context is not None:
            context(False)
        return [work(i) for i in range(n)]
    staged = len(shared) > 1
    if context is not None and not staged:
        context(False)  # before the fork: the workers inherit it
    task_r = shared[0]
    parent = os.getpid()
    children: list[tuple[int, int]] = []  # (pid, read end of its results)
    try:
        for _ in range(min(jobs, len(tasks)) - 1):
            try:
                r, w = os.pipe()
            except OSError:  # out of descriptors (or processes, below): fewer workers
                break
            try:
                pid = os.fork()
            except OSError:
                os.close(r)
                os.close(w)
                break
            if pid == 0:  # the child: judge what it draws, hand it back, leave without cleanup
                code = 0
                try:
                    for fd in (r, *(c[1] for c in children)):
                        os.close(fd)  # its siblings' results are not its business
                    # each result is pickled as soon as it is judged, into one stream (its
                    # memo shared: a rule's texts are written once), so that nothing is left
                    # to pickle when the last input is judged while the parent waits
                    buf = io.BytesIO()
                    # what a worker hands back: pickle is imported by each process once it
                    # forked (2 ms), not before the fork while the other waits
                    import pickle

                    dump = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL).dump
                    if staged:
                        _, ready_r, ready_w, file = shared
                        os.close(ready_w)
                        # reading is under half of judging: a worker that read two thirds of
                        # the input (of two workers) still has no more left than the parent
                        share = min(PREFETCH_BYTES, 2 * sum(sizes) // (jobs + 1))
                        ahead = _read_ahead(task_r, tasks, read, sizes, ready_r, share, parent)
                        adopt(_wait_for(ready_r, file))
                        for i, got in ahead.items():
                            dump((i, judged(i, got)))
                        ahead.clear()
                    _drain(task_r, tasks, lambda i: judged(i, read(i)), parent, dump)
                    dump(None)  # the end: a stream without it is refused whole
                    with os.fdopen(w, "wb") as out:
                        out.write(buf.getbuffer())
                except BaseException:  # its files are judged again by the parent
                    code = 1
                finally:
                    os._exit(code)
            os.close(w)
            children.append((pid, r))
        if context is not None and staged:
            payload, at = memoryview(context(True)), 0
            while at < len(payload):
                at += os.pwrite(shared[3], payload[at:], at)
            os.close(shared.pop(2))  # ready_w: every worker sees the end of the pipe now
        results = _drain(task_r, tasks, work)
        import pickle  # (often while the last worker is still judging)
    except BaseException:
        _stop(children)
        raise
    finally:
        for fd in shared:
            os.close(fd)
    try:
        while children:
            pid, r = children[0]
            with os.fdopen(r, "rb") as pipe:
                data = pipe.read()
            children[0] = (pid, -1)  # read and closed
            # read while the worker's exit is under way (tearing down its memory takes a few
            # milliseconds), kept only once it has exited cleanly
            handed: dict[int, Any] = {}
            with contextlib.suppress(Exception):  # what is missing is judged below
                handed = _results(pickle.Unpickler(io.BytesIO(data)))  # noqa: S301 - our child's
            del data
            clean = _exited_cleanly(pid)
            children.pop(0)
            if clean:
                results.update(handed)
    except BaseException:  # interrupted while collecting: no worker is left behind
        _stop(children)
        raise
    for i in range(n):
        if i not in results:  # a worker took it and failed or died
            results[i] = work(i)
    return [results[i] for i in range(n)]


def _exited_cleanly(pid: int) -> bool:
    """Reap worker ``pid``; whether it exited 0. Where SIGCHLD is ignored (a launcher's setting
    that survives exec) the system reaps it first: then what it wrote is the only word, and a
    truncated pickle is refused by the caller."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return True
    return os.waitstatus_to_exitcode(status) == 0


def _stop(children: list[tuple[int, int]]) -> None:
    """Kill and reap the workers, closing the read ends of their results (-1: closed)."""
    import signal

    for pid, r in children:
        if r >= 0:
            os.close(r)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.clear()


def _shared_descriptors(tasks: int, *, staged: bool) -> list[int] | None:
    """What every worker inherits: the read end of the task pipe (all task indices written into
    it) and, for a staged map where the system has memory files, the announcing pipe's two ends
    and the context's file. ``None`` when the process is out of descriptors.

    The context is handed over in memory only (``memfd_create``), never in a file on disk: it
    holds what the scanned files lent, PolicyException texts included."""
    opened: list[int] = []
    try:
        task_r, task_w = os.pipe()
        opened += (task_r, task_w)
        os.write(task_w, b"".join(t.to_bytes(_TASK, "little") for t in range(tasks)))
        os.close(opened.pop())  # every index is in the pipe: an empty read means no work left
        create = getattr(os, "memfd_create", None)
        if staged and create is not None:
            opened += os.pipe()  # closed by the parent once the context is written
            opened.append(create("airlock-scan-context", os.MFD_CLOEXEC))
    except OSError:
        for fd in opened:
            os.close(fd)
        return None
    return opened


def _read_ahead(  # noqa: PLR0917
    tasks_fd: int,
    tasks: list[list[int]],
    read: Callable[[int], R],
    sizes: Sequence[int],
    ready: int,
    budget: int,
    parent: int,
) -> dict[int, R]:
    """Read the inputs of the tasks drawn until the context is announced on ``ready`` (its end
    reached; ``poll``, not ``select``: descriptor numbers may pass select's limit of 1024), the
    inputs read reach ``budget`` bytes, or no task is left."""
    import select

    poller = select.poll()
    poller.register(ready, select.POLLIN)
    ahead: dict[int, R] = {}
    while budget > 0 and not poller.poll(0):
        _orphaned(parent)
        raw = os.read(tasks_fd, _TASK)
        if len(raw) < _TASK:
            break
        for i in tasks[int.from_bytes(raw, "little")]:
            ahead[i] = read(i)
            budget -= sizes[i]
    return ahead


def _wait_for(ready: int, file: int) -> bytes:
    """The context, once the parent has written it to ``file`` and closed the announcing pipe
    (``ready`` reads empty). A parent that died before writing leaves an empty file: the
    worker's ``adopt`` then fails, and so does the worker, as it would with no parent."""
    while os.read(ready, 1):
        pass  # nothing is ever written to it: only its end counts
    size = os.fstat(file).st_size
    data = os.pread(file, size, 0)
    if len(data) != size:
        raise EOFError("the scan context was cut short")
    return data


def _orphaned(parent: int) -> None:
    """A worker whose parent is gone (killed, or stopped by a signal) stops too."""
    if parent and os.getppid() != parent:
        raise SystemExit(1)


def _results(unpickler: Any) -> dict[int, Any]:
    """Every ``(index, result)`` a worker wrote, one pickle after another, up to its end mark
    (``None``). A stream without the mark was cut short: it raises, and none of it is used (a
    cut may fall between two pickles, where each one before it reads back whole)."""
    out: dict[int, Any] = {}
    while True:
        item = unpickler.load()  # EOFError before the end mark: cut short
        if item is None:
            return out
        i, result = item
        out[i] = result


def _drain(
    tasks_fd: int,
    tasks: list[list[int]],
    work: Callable[[int], T],
    parent: int = 0,
    put: Callable[[tuple[int, T]], object] | None = None,
) -> dict[int, T]:
    """Judge task after task drawn from the pipe until it is empty (in a worker, ``parent``:
    until then or until its parent is gone). Each ``(index, result)`` goes to ``put`` when
    given, else into the dict returned."""
    done: dict[int, T] = {}
    while True:
        _orphaned(parent)
        raw = os.read(tasks_fd, _TASK)
        if len(raw) < _TASK:  # empty (a 4-byte read of 4-byte writes is never split)
            return done
        for i in tasks[int.from_bytes(raw, "little")]:
            if put is None:
                done[i] = work(i)
            else:
                put((i, work(i)))
