"""Judging a scan's files on several cores: forked workers, results back through pipes.

A scan is CPU-bound Python (parsing, rules, detectors), so threads would take turns; processes
do not. The workers are forked after the context pass, so each starts with the imported modules,
the compiled policy and the evaluation context already in memory: nothing is pickled on the way
in. Each worker judges its share of the files (shares are balanced by file size) and writes back
what a report keeps of them (:class:`~airlock.scan.result.ScanEntry` stubs, never whole
objects); the parent judges the last share itself while the others run.

Nothing is lost: a worker that fails or dies has its share judged again by the parent, so the
report is the same as a serial scan's, in the same order. Where ``os.fork`` does not exist, or
for small inputs where a fork costs more than it saves, the scan stays serial.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["MIN_PARALLEL_BYTES", "default_jobs", "map_shares"]

MIN_PARALLEL_BYTES = 1 << 18
"""Below this much input (all files together) a scan stays serial: a fork and handing results
back cost a few milliseconds per worker, judging 256 KB of manifests about 0.1 s."""

T = TypeVar("T")


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def shares(sizes: Sequence[int], jobs: int) -> list[list[int]]:
    """Indices of ``sizes`` split into ``jobs`` shares of about the same total size (largest
    first onto the lightest share), each share in input order."""
    import heapq

    heap = [(0, j) for j in range(jobs)]
    out: list[list[int]] = [[] for _ in range(jobs)]
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        total, j = heapq.heappop(heap)
        out[j].append(i)
        heapq.heappush(heap, (total + sizes[i], j))
    for share in out:
        share.sort()
    return [s for s in out if s]


def map_shares(work: Callable[[int], T], sizes: Sequence[int], jobs: int) -> list[T]:
    """``[work(i) for i in range(len(sizes))]``, computed by up to ``jobs`` processes.

    ``work`` runs in forked children, so it may use anything the parent holds; what it returns
    must pickle. Serial when ``jobs`` is 1, when there is one input, when the inputs total less
    than :data:`MIN_PARALLEL_BYTES`, or when the platform cannot fork.
    """
    n = len(sizes)
    if jobs <= 1 or n < 2 or sum(sizes) < MIN_PARALLEL_BYTES or not hasattr(os, "fork"):
        return [work(i) for i in range(n)]
    import pickle  # what a worker hands back; with signal, only imported by a scan that forks
    import signal

    parts = shares(sizes, min(jobs, n))
    sys.stdout.flush()
    sys.stderr.flush()
    children: list[tuple[int, int, list[int]]] = []  # (pid, read end, share)
    for share in parts[:-1]:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: judge its share, hand it back, leave without cleanup
            os.close(r)
            code = 0
            try:
                data = pickle.dumps([work(i) for i in share], pickle.HIGHEST_PROTOCOL)
                with os.fdopen(w, "wb") as out:
                    out.write(data)
            except BaseException:  # the parent judges this share again and reports
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r, share))
    try:
        results: dict[int, T] = {i: work(i) for i in parts[-1]}
    except BaseException:
        for pid, r, _share in children:
            os.close(r)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    for pid, r, share in children:
        with os.fdopen(r, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        got: list[T] | None = None
        if os.waitstatus_to_exitcode(status) == 0:
            try:
                got = pickle.loads(data)  # noqa: S301 - our own forked child wrote it
            except Exception:
                got = None
        if got is None or len(got) != len(share):
            got = [work(i) for i in share]
        results.update(zip(share, got, strict=True))
    return [results[i] for i in range(n)]
