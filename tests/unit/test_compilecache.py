"""The compile cache: what it hands back equals what Python compiles, and a file it cannot
trust, read or use is passed over (every lookup then compiles afresh)."""

from __future__ import annotations

import json
import marshal
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from airlock import compilecache
from airlock.compilecache import CompileCache

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "airlock"
FIXTURES = ROOT / "tests" / "fixtures"
AIRLOCK = Path(sys.executable).parent / "airlock"


def _file(tmp_path: Path) -> str:
    return str(tmp_path / "compiled.marshal")


def _filled(path: str, *patterns: str) -> None:
    cache = CompileCache(path)
    for p in patterns:
        cache.regex(p)
    cache.save()


def _forged(path: str, pattern: str, codes_of: str) -> None:
    """A cache whose entry for ``pattern`` holds the codes of another pattern."""
    _filled(path, codes_of)
    tag, regexes, codes = marshal.loads(Path(path).read_bytes())  # noqa: S302
    regexes[(pattern, 0)] = regexes.pop((codes_of, 0))
    Path(path).write_bytes(marshal.dumps((tag, regexes, codes)))


def test_a_pattern_from_the_file_equals_a_fresh_one(tmp_path: Path) -> None:
    path = _file(tmp_path)
    patterns = [
        (r"(?P<key>[A-Za-z_]\w*)=(?P<value>\S+)", 0),
        (r"^\s*#.*$", re.MULTILINE),
        (r"ghp_[A-Za-z0-9]{36}\b", re.IGNORECASE | re.ASCII),
        (r"""(?x) a \  b  # verbose""", 0),
    ]
    first = CompileCache(path)
    for p, f in patterns:
        first.regex(p, f)
    first.save()
    second = CompileCache(path)
    for p, f in patterns:
        got = second.regex(p, f)
        assert got == re.compile(p, f)  # pattern, flags and engine codes all equal
        assert got.groupindex == re.compile(p, f).groupindex
    assert second._used_regexes == {(p, f) for p, f in patterns}
    assert not second._new  # all of them came from the file


def test_bytes_patterns_are_cached_too(tmp_path: Path) -> None:
    path = _file(tmp_path)
    first = CompileCache(path)
    first.regex(rb"type\.googleapis\.com/\w+")
    first.save()
    got = CompileCache(path).regex(rb"type\.googleapis\.com/\w+")
    assert got.search(b"x type.googleapis.com/abc") is not None


def test_the_file_is_what_a_lookup_uses(tmp_path: Path) -> None:
    """The premise of the trust checks below: a forged entry in a trusted file is used."""
    path = _file(tmp_path)
    _forged(path, "apple", codes_of="pear")
    assert CompileCache(path).regex("apple").search("pear") is not None


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_file_others_may_write_is_passed_over(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path)
    _forged(path, "apple", codes_of="pear")
    os.chmod(path, mode)
    got = CompileCache(path).regex("apple")
    assert got.search("pear") is None
    assert got.search("apple") is not None


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    real = str(tmp_path / "elsewhere.marshal")
    _forged(real, "apple", codes_of="pear")
    os.symlink(real, _file(tmp_path))
    assert CompileCache(_file(tmp_path)).regex("apple").search("pear") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can act as another user")
@pytest.mark.parametrize(("owner", "used"), [(4321, True), (0, True), (5555, False)])
def test_a_file_of_another_user_is_passed_over(owner: int, used: bool) -> None:
    """Read as user 4321: its own file and root's are used, user 5555's is not."""
    where = Path(tempfile.mkdtemp(prefix="airlock-cache-owner-"))
    try:
        where.chmod(0o755)  # 4321 may read what is in it
        path = str(where / "compiled.marshal")
        _forged(path, "apple", codes_of="pear")
        os.chmod(path, 0o644)
        os.chown(path, owner, owner)
        os.seteuid(4321)
        try:
            assert Path(path).read_bytes()  # readable: only its owner decides
            got = CompileCache(path).regex("apple")
        finally:
            os.seteuid(0)
        assert (got.search("pear") is not None) is used
    finally:
        shutil.rmtree(where)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"not marshal at all",
        lambda data: marshal.dumps(["a", "list"]),
        lambda data: marshal.dumps(((0, "another python"), {}, {})),  # another build's
        lambda data: b"",
    ],
    ids=["truncated", "garbage", "wrong-shape", "other-build", "empty"],
)
def test_a_damaged_or_foreign_file_is_passed_over_and_rewritten(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    path = _file(tmp_path)
    _filled(path, "kept", r"\d+")
    Path(path).write_bytes(damage(Path(path).read_bytes()))
    cache = CompileCache(path)
    assert cache.regex(r"\d+").fullmatch("123")
    assert cache._new  # compiled afresh
    cache.save()
    again = CompileCache(path)
    again.regex(r"\d+")
    assert not again._new  # the rewritten file serves it


def test_an_entry_the_engine_refuses_is_compiled_afresh(tmp_path: Path) -> None:
    path = _file(tmp_path)
    _filled(path, "apple")
    tag, regexes, codes = marshal.loads(Path(path).read_bytes())  # noqa: S302
    flags, _codes, groups, names, numbers = regexes[("apple", 0)]
    regexes[("apple", 0)] = (flags, [9999, 1, 2], groups, names, numbers)  # no such opcode
    Path(path).write_bytes(marshal.dumps((tag, regexes, codes)))
    got = CompileCache(path).regex("apple")
    assert got == re.compile("apple")


def test_nothing_is_written_when_nothing_new_was_compiled(tmp_path: Path) -> None:
    path = _file(tmp_path)
    _filled(path, "a+")
    before = os.stat(path).st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    cache = CompileCache(path)
    cache.regex("a+")
    cache.save()
    assert os.stat(path).st_mtime_ns == before - 10**9


def test_the_file_is_the_users_own(tmp_path: Path) -> None:
    path = str(tmp_path / "new" / "dir" / "compiled.marshal")
    _filled(path, "a")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    assert sorted(os.listdir(os.path.dirname(path))) == ["compiled.marshal"]  # no temp left


def test_an_unwritable_place_leaves_no_cache_and_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory would be")
    cache = CompileCache(str(blocker / "compiled.marshal"))
    cache.regex("x")
    cache.save()  # no exception
    assert blocker.read_text().startswith("a file")


def test_only_the_entries_used_survive_a_full_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compilecache, "MAX_ENTRIES", 3)
    path = _file(tmp_path)
    _filled(path, "a", "b", "c")
    cache = CompileCache(path)
    cache.regex("b")
    cache.regex("d")  # four entries now: more than three
    cache.save()
    _tag, regexes, _codes = marshal.loads(Path(path).read_bytes())  # noqa: S302
    assert set(regexes) == {("b", 0), ("d", 0)}


def test_a_syntax_error_is_raised_as_re_raises_it(tmp_path: Path) -> None:
    cache = CompileCache(_file(tmp_path))
    with pytest.raises(re.error):
        cache.regex("(unclosed")
    cache.save()
    assert not Path(_file(tmp_path)).exists()


def test_code_from_the_file_runs_as_compiled_code(tmp_path: Path) -> None:
    path = _file(tmp_path)
    source = "def f(x):\n    return x * 2\n"
    first = CompileCache(path)
    first.code(source, "<test>")
    first.save()
    second = CompileCache(path)
    env: dict[str, object] = {}
    exec(second.code(source, "<test>"), env)  # noqa: S102 - the code under test
    assert env["f"](21) == 42  # type: ignore[operator]
    assert not second._new


@pytest.mark.parametrize(
    ("environ", "where"),
    [
        ({"AIRLOCK_CACHE_DIR": "/x/y"}, "/x/y"),
        ({"AIRLOCK_CACHE_DIR": ""}, None),
        ({"AIRLOCK_CACHE_DIR": "relative/dir"}, None),  # not into the tree being scanned
        ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/airlock"),
        ({"XDG_CACHE_HOME": "relative"}, "HOME/.cache/airlock"),  # ignored, as XDG says
        ({}, "HOME/.cache/airlock"),
        ({"HOME": "/nonexistent"}, None),  # a service account's: nothing created there
    ],
)
def test_where_the_cache_lives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environ: dict[str, str], where: str | None
) -> None:
    for name in ("AIRLOCK_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    got = compilecache.cache_path()
    if where is None:
        assert got is None
        return
    assert got is not None
    assert os.path.dirname(got) == where.replace("HOME", str(tmp_path))
    name = os.path.basename(got)
    assert name.startswith(f"compiled-{sys.implementation.cache_tag}-")  # and the build's
    assert name.endswith(".marshal")


def test_two_builds_of_one_python_keep_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRLOCK_CACHE_DIR", "/c")
    mine = compilecache.cache_path()
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert compilecache.cache_path() != mine


def test_a_fifo_in_place_of_the_file_does_not_hold_a_command_up(tmp_path: Path) -> None:
    env = {**os.environ, "AIRLOCK_CACHE_DIR": str(tmp_path)}
    code = "from airlock import compilecache; print(compilecache.cache_path())"
    where = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    os.mkfifo(where)
    run = subprocess.run(
        [str(AIRLOCK), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert run.returncode == 0
    assert stat.S_ISREG(os.stat(where).st_mode)  # a cache written in its place


def test_a_policys_patterns_never_reach_the_cache(tmp_path: Path) -> None:
    """allowValues may spell a token, and extra credential names are the policy's own: both
    are compiled without the cache, so neither is written to disk."""
    policy = (ROOT / "manifests" / "examples" / "policy-default.yaml").read_text()
    policy = policy.replace('"^example-"', '"^KnownLeakedToken[0-9]{6}$"')
    policy = policy.replace("[VENDOR_KEY]", "[ACME_VAULTWORD]")
    assert "KnownLeakedToken" in policy
    assert "ACME_VAULTWORD" in policy
    (tmp_path / "policy.yaml").write_text(policy)
    cache = tmp_path / "cache"
    env = {**os.environ, "AIRLOCK_CACHE_DIR": str(cache)}
    run = subprocess.run(
        [str(AIRLOCK), "scan", "--policy", str(tmp_path / "policy.yaml"), "-o", "json",
         str(FIXTURES / "scan" / "violating.yaml")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    written = b"".join(p.read_bytes() for p in cache.iterdir())
    assert written  # the package's own patterns are there
    assert b"KnownLeaked" not in written
    assert b"ACME" not in written
    assert b"vaultword" not in written.lower()


def test_every_pattern_of_a_scan_comes_back_equal_from_the_file(tmp_path: Path) -> None:
    """A scan fills the cache (the patterns compiled on import and those compiled on first
    use); each of them, read back from the file, equals what re.compile makes of it."""
    env = {**os.environ, "AIRLOCK_CACHE_DIR": str(tmp_path)}
    run = subprocess.run(
        [str(AIRLOCK), "scan", "-j", "1", "-o", "json", str(FIXTURES)],
        env=env,
        capture_output=True,
        check=False,
    )
    assert json.loads(run.stdout)["summary"]["objects"] > 50, run.stderr  # some fixtures are bad
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, re, marshal, sys; from airlock import compilecache as c;"
            "tag, regexes, codes = marshal.loads(open(c.cache_path(), 'rb').read());"
            "print(json.dumps([len(regexes), len(codes),"
            " sum(c.regex(p, f) == re.compile(p, f) for p, f in regexes), c._CACHE._new]))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    regexes, codes, equal, new = json.loads(check.stdout)
    assert regexes > 150  # the package's patterns, not a handful
    assert codes > 20  # the records' methods
    assert equal == regexes
    assert new is False


def test_the_package_compiles_patterns_only_through_the_cache() -> None:
    """``re.compile`` in a module would bypass the cache (and its start-up saving)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "compilecache.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "re.compile(" in line and "never cached" not in line  # a policy's own patterns
    ]
    assert offenders == []
