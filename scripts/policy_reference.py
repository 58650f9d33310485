"""Regenerate the policy table in docs/policies.md from the pack (policies/reference.py).

Usage: venv/bin/python scripts/policy_reference.py [--check]
  (no option) rewrite the table between the policy-reference markers
  --check     exit 1 when the table is stale (tests/policies/test_policy_docs.py does the same)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policies.reference import policy_reference_markdown  # noqa: E402

DOC = ROOT / "docs" / "policies.md"
START = "<!-- policy-reference:start"
END = "<!-- policy-reference:end -->"
BLOCK = re.compile(rf"({re.escape(START)}[^\n]*\n)(.*?)({re.escape(END)})", re.S)


def render(text: str) -> str:
    if BLOCK.search(text) is None:
        raise SystemExit(f"{DOC} has no policy-reference markers")
    return BLOCK.sub(lambda m: f"{m.group(1)}{policy_reference_markdown()}\n{m.group(3)}", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    args = parser.parse_args()
    text = DOC.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{DOC.relative_to(ROOT)} is stale: run scripts/policy_reference.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
