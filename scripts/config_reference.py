"""Regenerate the README's configuration reference table from the config model.

Usage: venv/bin/python scripts/config_reference.py   (tests/test_readme.py fails until you do)
"""

from __future__ import annotations

import re
import sys
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


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = _BLOCK.sub(lambda m: f"{m.group(1)}{config_reference_markdown()}\n{m.group(3)}", text)
    readme.write_text(new)


if __name__ == "__main__":
    main()
