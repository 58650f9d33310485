"""`python -m components.smoke --stack NAME`: after `pulumi up`, does it serve, and how fast?

Sends streamed chat completions to every model through the stack's entry point (the gateway
where there is one; SageMaker through its runtime API; ECS/EKS through their endpoints, or a
tunnel given with `--url`) and reports per model: errors, TTFT p50/p95, inter-token latency,
output tokens/s, each beside the plan's bound where the plan gives one.

`stats` holds the pure statistics on timestamp traces, `clients` the two wire formats,
`targets` where each model answers (from the stack outputs), `runner` the command.
A package rather than one module: the statistics stay importable and testable without boto3
or HTTP, and each wire format is tested on its own against a loopback fake.
"""

from components.smoke.runner import main, smoke
from components.smoke.stats import Summary, Trace, summarize

__all__ = ["Summary", "Trace", "main", "smoke", "summarize"]
