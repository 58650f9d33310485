"""The corpus: stack files that once broke `plan` (issue 14's classes, and failures Hypothesis
shrank), each run through `plan` end to end: read, validated and, when valid, the program run
offline. Each file says in an `# expect:` line the exit code and a problem it must report (or
`any`: an answer, exit 0 or 2, and no traceback). A new failure the property test finds goes
here as `Pulumi.<what-broke>.yaml`, with the answer it should get.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components import plan

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
               for p in CORPUS.glob("Pulumi.*.yaml"))
_EXPECT = re.compile(r"^# expect: (any|0|2)(?: (.*))?$", re.M)


def test_the_corpus_covers_the_issues_classes():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_gets_its_answer_from_plan(case, capsys):
    text = (CORPUS / f"Pulumi.{case}.yaml").read_text()
    match = _EXPECT.search(text)
    assert match, f"Pulumi.{case}.yaml has no `# expect:` line"
    code = plan.main(["--stack", case, "--dir", str(CORPUS), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert "Traceback" not in captured.out + captured.err
    expected, needle = match.groups()
    if expected == "any":
        assert code in (0, plan.INVALID)
        return
    assert code == int(expected), doc.get("problems")
    if needle:
        said = doc.get("problems", []) + doc.get("warnings", [])
        assert any(needle.strip() in line for line in said), said
