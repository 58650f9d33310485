"""`eks_problems`: what only the eks platform can reject, with key paths.

The serving layer on EKS is built for vLLM end to end: its arguments come from vLLM's memory
accounting, KEDA scales on `vllm:num_requests_running`/`waiting`, the ServiceMonitor, alert rules
and dashboard read vLLM's metric names, and the non-root layout was checked against the vLLM
image (docs/hardening.md). A model asking for TGI would silently get vLLM, sized with TGI's
accounting, so it is refused here instead.
"""

from __future__ import annotations

from components.config import NAMESPACE, StackConfig


def eks_problems(config: StackConfig) -> list[str]:
    """Problems of a parsed eks stack; [] for a valid one."""
    return [
        f"{NAMESPACE}:models[{i}].engine: the eks platform serves with vLLM only (its scaling, "
        "metrics and container hardening are built for vLLM); use engine 'vllm', or the ecs or "
        "sagemaker platform for TGI"
        for i, model in enumerate(config.models)
        if model.spec.engine != "vllm"
    ]
