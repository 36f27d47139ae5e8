"""Reading another project's rule tests for the out-of-sample evaluation (``eval_external.py``):
the literal cases of Go ``tps``/``fps`` slices, generated ones skipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

RULE_FILE = r"""
package rules

// a comment with "tps := []string{"fake"}" in it
func Example() *config.Rule {
	tps := utils.GenerateSampleSecrets("ex", "generated-at-test-time")
	tps = append(tps,
		`"raw": "tok_` + "abc\tdef\x41" + `"`, // joined literals
		fmt.Sprintf("tok_%s", secrets.NewSecret("[a-z]{8}")),
		"tok_with_{braces}_and_(parens)",
	)
	fps := []string{
		"tok_xxxxxxxx",
		someVariable,
		`multi
line`,
	}
	return utils.Validate(r, tps, fps)
}
"""


@pytest.fixture(scope="module")
def eval_external():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import eval_external as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_literal_cases_are_read_and_generated_ones_skipped(eval_external) -> None:  # type: ignore[no-untyped-def]
    assert list(eval_external.cases(RULE_FILE)) == [
        ('"raw": "tok_abc\tdefA"', True),
        ("tok_with_{braces}_and_(parens)", True),
        ("tok_xxxxxxxx", False),
        ("multi\nline", False),
    ]


def test_a_value_labelled_both_ways_by_one_rule_is_dropped(eval_external, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / eval_external.RULES_DIR
    rules.mkdir(parents=True)
    (rules / "one.go").write_text(
        'tps := []string{"tok_same", "tok_yes"}\nfps := []string{"tok_same", "tok_no"}\n'
    )
    (rules / "one_test.go").write_text('tps := []string{"tok_from_a_test_file"}\n')
    out = tmp_path / "cases.jsonl"
    assert eval_external.build(tmp_path, out) == (1, 1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["value"], r["expect"]) for r in rows] == [("tok_yes", True), ("tok_no", False)]


def test_a_file_cut_short_is_read_without_error(eval_external) -> None:  # type: ignore[no-untyped-def]
    for n in range(len(RULE_FILE)):
        list(eval_external.cases(RULE_FILE[:n]))
