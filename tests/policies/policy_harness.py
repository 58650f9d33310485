"""The analyzer-protocol client the tests drive the pack with (it lives in policies/client.py,
shared with `python -m policies.check`)."""

from policies.client import (  # noqa: F401 - re-exported for the tests
    LEVEL_NAMES,
    LEVELS,
    PACK,
    ROOT,
    Analyzer,
    Diagnostic,
    FakeEngine,
    downgrade_references,
    parse_config_file,
)
