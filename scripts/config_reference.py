"""Keep README.md's configuration reference table in step with the config model.

The table between the `config-reference` markers in README.md is generated from
`components/config.py` (keys, types with their ranges, defaults, descriptions), and
tests/test_readme.py fails when the two drift apart.

  python scripts/config_reference.py           rewrite the table in README.md
  python scripts/config_reference.py --check   exit 1 (with a diff) if the table is stale
  python scripts/config_reference.py --print   print the generated table, change nothing
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config import config_reference_markdown  # noqa: E402

START = "<!-- config-reference:start"
END = "<!-- config-reference:end -->"
_BLOCK = re.compile(rf"({re.escape(START)}[^\n]*\n)(.*?)({re.escape(END)})", re.S)


def readme_table(text: str) -> str:
    match = _BLOCK.search(text)
    if match is None:
        raise SystemExit("README.md has no config-reference markers")
    return match.group(2).strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/config_reference.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="compare README.md with the config model; exit 1 on drift")
    mode.add_argument("--print", action="store_true", dest="print_table",
                      help="print the generated table to stdout; README.md is not touched")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md",
                        help="the README to read or rewrite (default: this project's)")
    args = parser.parse_args(argv)

    table = config_reference_markdown()
    if args.print_table:
        print(table)
        return 0
    text = args.readme.read_text()
    current = readme_table(text)
    if args.check:
        if current == table:
            print(f"{args.readme.name}: config reference is current")
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), table.splitlines(keepends=True),
            f"{args.readme.name} (current)", "components/config.py (generated)"))
        print(f"\n{args.readme.name}: config reference is stale; run "
              "`python scripts/config_reference.py` to rewrite it")
        return 1
    if current == table:
        print(f"{args.readme.name}: config reference already current")
        return 0
    args.readme.write_text(
        _BLOCK.sub(lambda m: f"{m.group(1)}{table}\n{m.group(3)}", text, count=1))
    print(f"{args.readme.name}: config reference rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
