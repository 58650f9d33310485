"""Property: any stack file around the examples gets a clear answer.

Generated stack files (tests/fuzz_stacks.py) go through reading (as the Pulumi CLI reads them),
the engine's own config checks and full validation (`parse_config`, what `pulumi up` runs): the
outcome is a valid config or a `ConfigError` whose every problem names a key path or a file
position. Any other exception is a bug. No per-example deadline: a busy 2-core CI machine makes
timing flaky; a hang still shows as a test that never ends. Shrunk failures found on the way
are kept in tests/corpus/, which test_corpus.py runs through `plan` end to end.

`LLM_HOSTING_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz_config.py` runs a longer campaign.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings

from components.config import ConfigError
from components.offline import read_disabled_default_providers
from components.platforms import parse_config
from components.stackfile import placeholder_warnings, read_stack_text
from tests.fuzz_stacks import stack_texts

EXAMPLES = int(os.environ.get("LLM_HOSTING_FUZZ_EXAMPLES", "300"))
RANDOM = "LLM_HOSTING_FUZZ_EXAMPLES" in os.environ
"""The suite's run is derandomized (the same examples every run); a campaign explores anew."""
NAMES_A_PLACE = re.compile(
    r"^(Pulumi\.fuzz\.yaml(:\d+(:\d+)?)?: |(llm-hosting|aws|pulumi):[\w.:\[\]-]*[:\[ ])")


def answer(text: str) -> tuple[str, tuple[str, ...]]:
    """("valid" | "invalid", problems) for one stack file, as `plan` would judge it."""
    try:
        stack = read_stack_text(text, "fuzz")
        placeholder_warnings(stack)
        _, engine = read_disabled_default_providers(stack.config)
        parse_config(stack.config, project="llm-hosting", stack="fuzz",
                     secret_keys=stack.secret_keys)
    except ConfigError as err:
        return "invalid", err.problems
    return ("invalid", tuple(engine)) if engine else ("valid", ())


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stack_texts())
def test_any_stack_file_gets_a_config_error_with_key_paths_or_a_valid_config(text):
    outcome, problems = answer(text)
    if outcome == "invalid":
        assert problems, "a ConfigError must list its problems"
        for problem in problems:
            assert NAMES_A_PLACE.match(problem), f"no key path or position: {problem!r}"
