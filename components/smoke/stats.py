"""Latency and throughput statistics of streamed completions, from timestamps only.

Pure functions over `Trace`s (what one streamed request looked like on the client's monotonic
clock), so they are tested on recorded traces with exact answers. Definitions follow vLLM's
serving benchmark (vllm `benchmarks/benchmark_serving.py`, `calculate_metrics`):

* TTFT: first chunk that carries output text, minus the moment the request was sent;
* ITL (inter-token latency): the gaps between consecutive text chunks, pooled over requests (a
  chunk may carry more than one token; servers stream one token per chunk in the common case);
* output tokens: the server's `usage.completion_tokens` when it sends usage, else the number of
  text chunks;
* output tokens/s: all output tokens of the run divided by the run's wall-clock span (first
  send to last byte), i.e. what the deployment delivered at that concurrency; and per request,
  the decode rate `(tokens - 1) / (last chunk - first chunk)`.
Percentiles interpolate linearly between closest ranks (numpy's default method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    """One request: when it was sent, when each text chunk arrived, when it ended (seconds)."""

    start: float
    chunks: tuple[float, ...]
    end: float
    usage_tokens: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.chunks)


def ttft(trace: Trace) -> float | None:
    return trace.chunks[0] - trace.start if trace.chunks else None


def gaps(trace: Trace) -> list[float]:
    return [b - a for a, b in zip(trace.chunks, trace.chunks[1:], strict=False)]


def output_tokens(trace: Trace) -> int:
    return trace.usage_tokens if trace.usage_tokens is not None else len(trace.chunks)


def decode_rate(trace: Trace) -> float | None:
    """Tokens per second after the first one, for one sequence; None below two tokens."""
    tokens = output_tokens(trace)
    if tokens < 2 or len(trace.chunks) < 2:
        return None
    span = trace.chunks[-1] - trace.chunks[0]
    return (tokens - 1) / span if span > 0 else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks: rank = p/100 x (n - 1)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """One model's run: counts, latency percentiles (s), throughput (tokens/s)."""

    requests: int
    errors: int
    output_tokens: int
    ttft_p50: float | None
    ttft_p95: float | None
    itl_p50: float | None
    itl_p95: float | None
    tokens_per_second: float | None
    decode_rate_p50: float | None
    wall_seconds: float


def summarize(traces: Sequence[Trace]) -> Summary:
    good = [t for t in traces if t.ok]
    first_ttfts = [x for t in good if (x := ttft(t)) is not None]
    pooled = [g for t in good for g in gaps(t)]
    rates = [r for t in good if (r := decode_rate(t)) is not None]
    tokens = sum(output_tokens(t) for t in good)
    wall = (max(t.end for t in traces) - min(t.start for t in traces)) if traces else 0.0
    return Summary(
        requests=len(traces),
        errors=len(traces) - len(good),
        output_tokens=tokens,
        ttft_p50=percentile(first_ttfts, 50),
        ttft_p95=percentile(first_ttfts, 95),
        itl_p50=percentile(pooled, 50),
        itl_p95=percentile(pooled, 95),
        tokens_per_second=tokens / wall if good and wall > 0 else None,
        decode_rate_p50=percentile(rates, 50),
        wall_seconds=wall,
    )
