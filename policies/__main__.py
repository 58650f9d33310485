"""Assemble the llm-hosting policy pack; the rules live in `rules/`, one module per family.

The Pulumi CLI runs this file as `python -m pulumi.policy <engine> .` from this folder. The repo
root goes on `sys.path` so the pack sizes models with the same `components/facts` and
`components/sizing.py` the program uses: one truth for GPU memory and prices.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.rules import RULES  # noqa: E402

# New rules start advisory (pack default); each environment's config file sets enforcement.
PolicyPack(
    name="llm-hosting",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[rule.policy() for rule in RULES],
)
