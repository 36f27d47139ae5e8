"""The detector evaluation on a labelled set of one's own (``eval_detectors.py --cases``)."""

from __future__ import annotations

import json
import random
import string
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def eval_detectors():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import eval_detectors as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def _token() -> str:
    rng = random.Random(5)  # noqa: S311 - synthetic
    return "hf_" + "".join(rng.choice(string.ascii_letters) for _ in range(34))


def test_own_cases_are_scored_in_every_placement_without_printing_values(
    eval_detectors, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = _token()
    cases = tmp_path / "mine.jsonl"
    rows = [
        {"provider": "huggingface", "value": token, "expect": True},
        # a credential the detectors cannot know: it must count as missed, not found
        {"provider": "house", "value": "plainword", "expect": True},
        {"provider": "house", "value": "just some prose here", "expect": False},
    ]
    cases.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert eval_detectors.main(["--cases", str(cases), "--verbose"]) == 0
    out = capsys.readouterr().out
    for placement in ("env neutral", "env credential-named", "args"):
        line = next(x for x in out.splitlines() if x.startswith(f"mine, {placement} "))
        assert "positives   2  negatives   1" in line
        assert "false-positive rate   0.0%" in line
    assert "mine:2 house" in out  # the miss is named by provider and line
    assert "house" in out.split("providers below target")[1]
    assert "huggingface" not in out.split("providers below target")[1]
    assert token not in out  # never a value
    assert "plainword" not in out


def test_an_unreadable_set_is_an_error_naming_the_file(
    eval_detectors, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"provider": "x", "value": \n')
    assert eval_detectors.main(["--cases", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
