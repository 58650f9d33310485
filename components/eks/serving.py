"""One model on EKS: the vLLM OpenAI server as a Deployment, its Service, PDB and autoscaler.

Everything Kubernetes-shaped is built by pure functions that return plain dicts (the manifests
exactly as the API server receives them), so tests validate them with `kubernetes_validate` and
the CRD schemas without running Pulumi; `ModelServing` only registers them.

Choices worth knowing (details in docs/eks-serving.md):

* Autoscaling is a KEDA `ScaledObject` on vLLM's in-flight gauges, not a bare HPA. An HPA can only
  read `vllm:*` series through a custom-metrics adapter with renaming rules (the colon is not legal
  in the custom metrics API), cannot scale to zero (`minReplicas: 0` is valid config here), and
  cannot query Amazon Managed Prometheus, which needs SigV4. KEDA runs the PromQL directly, signs
  AMP queries with its own Pod Identity, and still drives an HPA, so the scaling `behavior` below
  is plain `autoscaling/v2` semantics. https://keda.sh/docs/latest/scalers/prometheus/
* The Deployment leaves `spec.replicas` unset: the autoscaler owns it. Setting it would make
  every `pulumi up` reset a scaled-out model to `minReplicas` and drop serving capacity.
  https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#migrating-deployments-and-statefulsets-to-horizontal-autoscaling
* Weights from `weightsUri` are streamed by vLLM's Run:ai model streamer straight from S3 into GPU
  memory (`--load-format runai_streamer`; Llama-3-8B loads in 4.2 s from S3 against 14.4 s from
  gp3, https://docs.vllm.ai/en/latest/models/extensions/runai_model_streamer.html); the pod's role
  may read only that prefix (and decrypt with `weightsKmsKeyArn` through S3 only). Without
  `weightsUri` the Hub token comes from a Kubernetes Secret made from the Pulumi secret, never
  from a plaintext env value.
* With tensor parallelism the streamer runs in distributed mode: vLLM v0.12.0 passes
  `is_distributed` from `--model-loader-extra-config '{"distributed": true}'` and defaults it to
  false (vllm/model_executor/model_loader/runai_streamer_loader.py), so without it every rank
  streams the whole checkpoint. Each rank then reads 1/TP and broadcasts it over NCCL
  (runai_model_streamer.distributed_streamer). Its CPU buffer is bounded with `memory_limit`: the
  distributed streamer otherwise sets RUNAI_STREAMER_MEMORY_LIMIT to -1 (unlimited, a rank buffers
  its whole share) and the single-process default is 40 GB per process; the pod's memory is sized
  from the bound (`pod_resources`).
* The startup probe allows what the start-up model (components/startup.py) estimates for the
  engine container, the same window the policy pack requires.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import Model
from components.eks.hardening import (
    container_security_context,
    model_network_policy,
    pod_security_context,
    scratch_gib,
    scratch_volumes,
)
from components.eks.labels import GPU_RESOURCE, GPU_TOLERATION
from components.eks.roles import pod_identity_role
from components.facts.gpus import GpuInstance
from components.facts.images import VLLM, EngineImage
from components.network import ELB_TLS_POLICY
from components.sizing import GIB, weight_bytes
from components.startup import STREAMER_CONCURRENCY, estimate_for_model, s3_stream_readers
from components.tags import Naming, serving_descriptor, startup_descriptor
from components.weights_kms import weights_decrypt_statements

Ingress = Literal["none", "internal-alb"]

HTTP_PORT_NAME = "http"
SERVICE_PORT = 80

#: The startup probe checks every 10 s and restarts the container after
#: `startup_probe_failures` misses: the start-up model's container window (components/startup.py).
#: The cache volume is an emptyDir, which survives container restarts, so a restart never
#: re-downloads Hub weights.
STARTUP_PERIOD_SECONDS = 10
#: Seconds between SIGTERM's preStop and the kill: endpoint removal reaches kube-proxy and the
#: ALB target group (deregistration) before the server stops accepting connections.
#: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
PRESTOP_SLEEP_SECONDS = 15
#: Assumed floor on per-sequence decode speed of a saturated replica, used only to size the
#: termination grace period so the longest allowed completion can still stream out.
MIN_DECODE_TOKENS_PER_SECOND = 10
MIN_GRACE_SECONDS = 120
#: At least this long (or the start-up model's whole cold start, when longer), so a slow first
#: rollout is not reported as failed by the Deployment controller (default 600 s).
PROGRESS_DEADLINE_SECONDS = 2400
#: Pulumi waits for the Deployment this much past its progress deadline (node launch).
ROLLOUT_SLACK_SECONDS = 300
#: CPU left per GPU share for the kubelet and daemonsets (device plugin, DCGM, CNI, proxy).
SYSTEM_CPU_RESERVE = 1
#: Share of the replica's host memory given to the pod; the rest covers kube-reserved memory
#: (11 MiB x max pods + 255 MiB on EKS AMIs) and daemonsets.
HOST_MEMORY_SHARE = 0.75
#: Host memory of one vLLM worker process (PyTorch, CUDA context, the API server on rank 0) apart
#: from the streamer's buffer: an assumption, not a measurement; it only sets the floor of the
#: pod's memory when the host share is smaller.
ENGINE_HOST_GIB_PER_RANK = 6
#: The Run:ai streamer's CPU buffer per reading process: at least 2 GiB (room for every one of
#: `STREAMER_CONCURRENCY` 8 MiB S3 range reads, run-ai docs env-vars.md, many times over), and
#: never below the checkpoint's largest tensor, which the streamer refuses to split ("Memory
#: limit supplied ... cannot be smaller than" the largest chunk,
#: runai_model_streamer file_streamer/requests_iterator.py, 0.15.0).
STREAMER_MIN_BUFFER_BYTES = 2 * GIB
STREAMER_BUFFER_STEP_BYTES = 256 * 1024**2
#: The largest single tensor of a checkpoint, bounded from the shape: the (untied) embedding or
#: LM head (vocab x hidden), or an MLP matrix, at most 8 x hidden^2 in the catalog (Gemma 2 27B:
#: 36864 x 4608). A MoE checkpoint that fuses its experts into one tensor exceeds it; the
#: streamer then fails at load with the limit in its message, never silently.
LARGEST_MATRIX_HIDDEN_SQUARES = 8

#: Autoscaling: scale-down waits 30 min and removes one replica per 10 min. A replica that is
#: removed costs a node launch, an image pull and a model load (~10 min) to get back, so the
#: window is three of those: a dip between bursts does not thrash. Scale-up adds at least one
#: replica or doubles every 5 min (a new replica is not ready sooner anyway).
SCALE_DOWN_STABILIZATION_SECONDS = 1800
SCALE_DOWN_PERIOD_SECONDS = 600
SCALE_UP_STABILIZATION_SECONDS = 60
SCALE_UP_PERIOD_SECONDS = 300
KEDA_POLLING_SECONDS = 15

@dataclass(frozen=True)
class MetricsSource:
    """Where KEDA reads vLLM's gauges: in-cluster Prometheus, or AMP signed with SigV4."""

    server_address: pulumi.Input[str]
    aws_region: str | None = None  # set: AMP, queried with KEDA's own Pod Identity
    trigger_authentication: str | None = None  # ClusterTriggerAuthentication name for AMP


def namespace_name(model: Model) -> str:
    """`llm-<model>`: one namespace per model, never a system namespace by accident."""
    return f"llm-{model.name}"


def labels(model: Model) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": model.name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "llm-hosting",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector_labels(model: Model) -> dict[str, str]:
    """Immutable Deployment selector: only labels that never change for a model."""
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": model.name}


def _meta(model: Model, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name or model.name, "namespace": namespace_name(model),
            "labels": labels(model), **extra}


def served_model_name(model: Model) -> str:
    """Clients send the Hugging Face id as `model`, whether weights come from S3 or the Hub."""
    return model.spec.model_id


def max_num_seqs(model: Model) -> int:
    """Batch cap: the `--max-num-seqs` sizing assumed (the full-length sequences the KV cache
    holds once the sampler warm-up for them is paid, never below the target)."""
    return model.memory.engine.max_num_seqs


def vllm_args(model: Model, engine: EngineImage = VLLM) -> list[str]:
    """`vllm serve` arguments from the config and the sizing decision.

    `--tensor-parallel-size` is the resolved GPU count; `--max-model-len`,
    `--max-num-batched-tokens`, `--max-num-seqs` and `--gpu-memory-utilization` are exactly the
    engine settings the memory model profiled (`model.memory.engine`, components/sizing.py), so
    what vLLM measures at start-up is what the plan promised. With `weightsUri` the model path is
    the S3 URI and the Run:ai streamer loads it.
    """
    spec, settings = model.spec, model.memory.engine
    args = engine.serve_args(
        model=spec.weights_uri.rstrip("/") if spec.weights_uri else spec.model_id,
        served_model_name=served_model_name(model),
        tensor_parallel=model.gpus_per_replica,
        max_input_tokens=spec.max_input_tokens,
        max_total_tokens=settings.max_model_len,
        max_concurrency=settings.max_num_seqs,
        quantization=model.engine_quantization,
        gpu_memory_fraction=settings.gpu_memory_utilization,
        max_batched_tokens=settings.max_num_batched_tokens,
    )
    if spec.weights_uri:
        args += ["--load-format", "runai_streamer",
                 "--model-loader-extra-config", json.dumps(streamer_config(model),
                                                           separators=(",", ":"))]
    return args


def largest_tensor_bytes(model: Model) -> int:
    """Upper bound on the checkpoint's largest tensor (see LARGEST_MATRIX_HIDDEN_SQUARES), at
    the checkpoint's on-disk width (fp32 checkpoints store 4 bytes a weight; quantized ones keep
    the embedding in 16-bit)."""
    shape = model.shape
    width = 4 if shape.dtype == "float32" and model.checkpoint_quantization == "none" else 2
    return width * max(shape.vocab_size * shape.hidden_size,
                       LARGEST_MATRIX_HIDDEN_SQUARES * shape.hidden_size**2)


def streamer_buffer_bytes(model: Model) -> int:
    """The streamer's `memory_limit` per reading process, in bytes."""
    step = STREAMER_BUFFER_STEP_BYTES
    return max(STREAMER_MIN_BUFFER_BYTES, math.ceil(largest_tensor_bytes(model) / step) * step)


def streamer_config(model: Model) -> dict[str, Any]:
    """`--model-loader-extra-config` of the Run:ai streamer, keys as vLLM v0.12.0 reads them
    (`distributed`: bool, `concurrency` and `memory_limit`: int; other keys and types are ignored
    without a word, so tests hold these to the pinned source)."""
    config: dict[str, Any] = {"concurrency": STREAMER_CONCURRENCY,
                              "memory_limit": streamer_buffer_bytes(model)}
    if s3_stream_readers(model.gpus_per_replica) > 1:
        config = {"distributed": True, **config}
    return config


def startup_probe_failures(model: Model) -> int:
    """Misses the startup probe allows: the start-up model's engine-container window."""
    window = estimate_for_model(model, "eks").container_seconds
    return math.ceil(window / STARTUP_PERIOD_SECONDS)


def progress_deadline_seconds(model: Model) -> int:
    """The Deployment's progress deadline: a whole cold start (image pull included)."""
    return max(PROGRESS_DEADLINE_SECONDS, estimate_for_model(model, "eks").total_seconds)


def rollout_timeouts(model: Model) -> pulumi.CustomTimeouts:
    """Pulumi's wait for the Deployment: past its progress deadline, by a node launch."""
    minutes = math.ceil((progress_deadline_seconds(model) + ROLLOUT_SLACK_SECONDS) / 60)
    return pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")


def cache_size_gib(model: Model) -> int:
    """Model cache (emptyDir on the node's root volume): the weights when pulled from the Hub,
    plus 10 GiB for tokenizer, configs and compile caches; 10 GiB when streamed from S3."""
    extra = 10
    if model.spec.weights_uri:
        return extra
    return math.ceil(weight_bytes(model.shape, model.spec.quantization) / GIB * 1.1) + extra


def shm_size_gib(model: Model) -> int:
    """/dev/shm for NCCL between tensor-parallel workers and vLLM's multiprocessing: the
    container runtime default (64 MiB) is far too small. https://docs.vllm.ai/en/latest/
    deployment/k8s.html"""
    return 2 if model.gpus_per_replica == 1 else 4 * model.gpus_per_replica


def pod_resources(model: Model, hosts: Sequence[GpuInstance] = (), engine: EngineImage = VLLM
                  ) -> dict[str, dict[str, str]]:
    """The replica's GPUs plus its share of host CPU/memory on the *smallest* instance the
    model's NodePool may launch (`hosts`; default the sized instance), so Karpenter can pick any
    admitted type for the pod.

    Memory request = limit (the pod is never OOM-killed for another pod's burst); no CPU limit
    (throttling the tokenizer/scheduler thread stalls every stream). The memory-backed /dev/shm
    counts against the memory limit, so it is included. Never below `pod_memory_floor_gib`: the
    streamer's buffers and the engine processes must fit what the pod may use.
    """
    tp = model.gpus_per_replica
    hosts = tuple(hosts) or (model.instance,)
    cpu = max(1, min(math.floor(h.vcpus * tp / h.gpu_count) for h in hosts) - SYSTEM_CPU_RESERVE)
    share = min(math.floor(h.memory_mib / 1024 * tp / h.gpu_count * HOST_MEMORY_SHARE)
                for h in hosts)
    memory_gib = max(4, share, pod_memory_floor_gib(model))
    memory = f"{memory_gib}Gi"
    # The model cache plus the engine's scratch emptyDirs (HOME caches, /tmp): the root
    # filesystem is read-only, so nothing else writes to the node's disk.
    storage = f"{cache_size_gib(model) + scratch_gib(engine.non_root)}Gi"
    return {
        "requests": {"cpu": str(cpu), "memory": memory, GPU_RESOURCE: str(tp),
                     "ephemeral-storage": storage},
        "limits": {"memory": memory, GPU_RESOURCE: str(tp), "ephemeral-storage": storage},
    }


def pod_memory_floor_gib(model: Model) -> int:
    """Host memory the engine needs: per worker process (one per GPU) its own memory and, when
    it streams from S3, the streamer's buffer (every rank buffers in distributed mode, the one
    process otherwise), plus the memory-backed /dev/shm."""
    tp = model.gpus_per_replica
    buffers = 0
    if model.spec.weights_uri:
        buffers = s3_stream_readers(tp) * streamer_buffer_bytes(model)
    need = tp * ENGINE_HOST_GIB_PER_RANK * GIB + buffers + shm_size_gib(model) * GIB
    return math.ceil(need / GIB)


def termination_grace_seconds(model: Model) -> int:
    """preStop + the time the longest allowed completion needs at the assumed decode floor."""
    new_tokens = model.spec.max_total_tokens - model.spec.max_input_tokens
    stream = math.ceil(new_tokens / MIN_DECODE_TOKENS_PER_SECOND)
    return max(MIN_GRACE_SECONDS, PRESTOP_SLEEP_SECONDS + stream)


def namespace(model: Model, engine: EngineImage = VLLM) -> dict[str, Any]:
    """Namespace enforcing the Pod Security `restricted` profile: the model server runs as
    non-root with every capability dropped (components/eks/hardening.py), so the admission
    controller also refuses any pod added to the namespace that would not. An engine image only
    known to run as root gets `baseline` enforced (restricted still audited and warned)."""
    enforce = "restricted" if engine.non_root is not None else "baseline"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(model),
            "labels": {
                **labels(model),
                "pod-security.kubernetes.io/enforce": enforce,
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def network_policy(model: Model, load_balancer_cidrs: Sequence[Any] = (),
                   engine: EngineImage = VLLM) -> dict[str, Any]:
    """The model namespace's NetworkPolicy (default deny + serving flows; hardening.py)."""
    return model_network_policy(
        name=f"{model.name}-serving", namespace=namespace_name(model), labels=labels(model),
        port=engine.port, load_balancer_cidrs=load_balancer_cidrs)


def service_account(model: Model) -> dict[str, Any]:
    """The pod's identity for S3 (EKS Pod Identity association); no Kubernetes API token."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(model),
        "automountServiceAccountToken": False,
    }


HF_TOKEN_KEY = "HF_TOKEN"


def hf_token_secret(model: Model, token: Any) -> dict[str, Any]:
    """Secret holding the Hub token; `token` is the Pulumi secret Output (stays secret)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(model, f"{model.name}-hf-token"),
        "type": "Opaque",
        "stringData": {HF_TOKEN_KEY: token},
    }


def needs_hf_token(model: Model, have_token: bool) -> bool:
    return have_token and model.spec.weights_uri is None


def _probe(path: str, period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def deployment(
    model: Model,
    *,
    region: str,
    node_selector: Mapping[str, str],
    with_hf_token: bool,
    hosts: Sequence[GpuInstance] = (),
    engine: EngineImage = VLLM,
) -> dict[str, Any]:
    """The vLLM OpenAI server for one model, on the model's Karpenter NodePool, as non-root
    with a read-only root filesystem: HOME, the caches and /tmp are emptyDirs
    (components/facts/images.py records where the image writes)."""
    layout = engine.non_root
    env: list[dict[str, Any]] = [
        {"name": "HF_HOME", "value": "/models/hf"},
        *({"name": k, "value": v} for k, v in (layout.env() if layout else {}).items()),
        # No usage-stats calls home from a private subnet.
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
    ]
    if model.spec.weights_uri:
        # The Run:ai streamer's S3 client signs with the Pod Identity credentials the EKS agent
        # injects; the region keeps requests on the VPC's S3 gateway endpoint.
        env += [{"name": "AWS_REGION", "value": region},
                {"name": "AWS_DEFAULT_REGION", "value": region}]
    if with_hf_token:
        env.append({"name": HF_TOKEN_KEY, "valueFrom": {"secretKeyRef": {
            "name": f"{model.name}-hf-token", "key": HF_TOKEN_KEY}}})
    scratch, scratch_mounts = scratch_volumes(layout) if layout else ([], [])
    container = {
        "name": "vllm",
        "image": engine.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(engine.entrypoint),
        "args": vllm_args(model, engine),
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": engine.port, "protocol": "TCP"}],
        "env": env,
        "resources": pod_resources(model, hosts, engine),
        "startupProbe": _probe(engine.health_path, STARTUP_PERIOD_SECONDS,
                               startup_probe_failures(model), 5),
        "readinessProbe": _probe(engine.health_path, 10, 3, 5),
        "livenessProbe": _probe(engine.health_path, 20, 3, 10),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "model-cache", "mountPath": "/models"},
            *scratch_mounts,
        ],
        "securityContext": container_security_context(layout),
    }
    sel = selector_labels(model)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": model.name,
        # No Kubernetes API token: vLLM never calls the API. EKS Pod Identity is unaffected: its
        # webhook mounts its own projected token (eks-pod-identity-token) whatever this says.
        # https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(layout),
        "terminationGracePeriodSeconds": termination_grace_seconds(model),
        "nodeSelector": dict(node_selector),
        "tolerations": [dict(GPU_TOLERATION)],
        # Replicas spread over zones and nodes: one AZ or node loss never takes all of them.
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": sel}}
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
        "containers": [container],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory",
                                          "sizeLimit": f"{shm_size_gib(model)}Gi"}},
            {"name": "model-cache", "emptyDir": {"sizeLimit": f"{cache_size_gib(model)}Gi"}},
            *scratch,
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # What the Deployment serves, for the policy pack's fit, start-up and cost checks.
        "metadata": _meta(model, annotations={**serving_descriptor(model, "eks"),
                                              **startup_descriptor(model)}),
        "spec": {
            # replicas deliberately unset: the ScaledObject's HPA owns it (module docstring).
            "selector": {"matchLabels": sel},
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": progress_deadline_seconds(model),
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(model)},
                "spec": pod_spec,
            },
        },
    }


def service(model: Model, engine: EngineImage = VLLM) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(model),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(model),
            "ports": [{"name": HTTP_PORT_NAME, "port": SERVICE_PORT,
                       "targetPort": HTTP_PORT_NAME, "protocol": "TCP"}],
        },
    }


def pod_disruption_budget(model: Model) -> dict[str, Any]:
    """Voluntary disruptions (Karpenter consolidation, drains) never take the last ready replica.

    One replica: `minAvailable: 1` blocks voluntary eviction until the NodePool's
    `terminationGracePeriod` forces it (node expiry still happens, just not mid-traffic by
    choice). Two or more: one replica at a time. `AlwaysAllow` lets a stuck, never-ready pod be
    evicted so it cannot block a drain forever.
    https://kubernetes.io/docs/tasks/run-application/configure-pdb/#unhealthy-pod-eviction-policy
    """
    budget: dict[str, Any] = (
        {"maxUnavailable": 1} if model.spec.min_replicas >= 2 else {"minAvailable": 1}
    )
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(model),
        "spec": {**budget, "selector": {"matchLabels": selector_labels(model)},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }


def inflight_query(model: Model, engine: EngineImage = VLLM) -> str:
    """PromQL: requests running plus waiting across the model's replicas (vLLM gauges)."""
    sel = f'namespace="{namespace_name(model)}",service="{model.name}"'
    return " + ".join(f"sum({m}{{{sel}}})" for m in engine.inflight_metrics)


def scaling_behavior(model: Model) -> dict[str, Any]:
    """`autoscaling/v2` HPA behavior (KEDA copies it into the HPA it manages)."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": SCALE_UP_STABILIZATION_SECONDS,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 1, "periodSeconds": SCALE_UP_PERIOD_SECONDS},
                {"type": "Percent", "value": 100, "periodSeconds": SCALE_UP_PERIOD_SECONDS},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": SCALE_DOWN_STABILIZATION_SECONDS,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": SCALE_DOWN_PERIOD_SECONDS}],
        },
    }


def _prometheus_trigger(metrics: MetricsSource, query: str, threshold: int) -> dict[str, Any]:
    trigger_metadata: dict[str, Any] = {
        "serverAddress": metrics.server_address,
        "query": query,
        "threshold": str(threshold),
        "activationThreshold": "0",
        "ignoreNullValues": "true",
    }
    trigger: dict[str, Any] = {"type": "prometheus", "metricType": "AverageValue",
                               "metadata": trigger_metadata}
    if metrics.aws_region:
        trigger_metadata["awsRegion"] = metrics.aws_region
        trigger["authenticationRef"] = {"name": metrics.trigger_authentication,
                                        "kind": "ClusterTriggerAuthentication"}
    return trigger


def scaled_object(model: Model, metrics: MetricsSource, engine: EngineImage = VLLM, *,
                  gateway_waiting_query: str | None = None) -> dict[str, Any]:
    """KEDA ScaledObject: replicas = ceil(in-flight requests / concurrencyTarget).

    `concurrencyTarget` is the per-replica load the sizing guaranteed the KV cache holds, so the
    model scales out before requests queue for KV cache. If Prometheus cannot be queried, KEDA
    keeps the current replicas when they are above `minReplicas` (never scales down blind).

    At zero replicas vLLM's gauges vanish with the last pod, so nothing would ever activate the
    model again; with the gateway on, `gateway_waiting_query` (requests the gateway holds or
    diverts for this model) is a second trigger that activates it: `minReplicas: 0` becomes
    request-driven instead of parking the model.
    """
    spec = model.spec
    triggers = [_prometheus_trigger(metrics, inflight_query(model, engine),
                                    spec.concurrency_target)]
    if gateway_waiting_query is not None:
        triggers.append(_prometheus_trigger(metrics, gateway_waiting_query,
                                            spec.concurrency_target))
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(model),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.name},
            "pollingInterval": KEDA_POLLING_SECONDS,
            "cooldownPeriod": SCALE_DOWN_STABILIZATION_SECONDS,
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.replicas_max,
            "fallback": {"failureThreshold": 3, "replicas": max(spec.min_replicas, 1),
                         "behavior": "currentReplicasIfHigher"},
            "advanced": {
                "restoreToOriginalReplicaCount": False,
                "horizontalPodAutoscalerConfig": {
                    "name": model.name,
                    "behavior": scaling_behavior(model),
                },
            },
            "triggers": triggers,
        },
    }


def equivalent_hpa(scaled: Mapping[str, Any]) -> dict[str, Any]:
    """The `autoscaling/v2` HPA KEDA generates from a ScaledObject (what the cluster runs).

    Lets tests validate the scaling behavior against the real HPA schema; KEDA feeds the trigger
    as an External metric with an AverageValue target.
    https://keda.sh/docs/latest/concepts/scaling-deployments/
    """
    spec = scaled["spec"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": spec["advanced"]["horizontalPodAutoscalerConfig"]["name"],
                     "namespace": scaled["metadata"]["namespace"]},
        "spec": {
            "scaleTargetRef": spec["scaleTargetRef"],
            "minReplicas": max(1, spec["minReplicaCount"]),
            "maxReplicas": spec["maxReplicaCount"],
            "metrics": [{"type": "External", "external": {
                "metric": {"name": f"s{i}-prometheus"},
                "target": {"type": "AverageValue",
                           "averageValue": trigger["metadata"]["threshold"]},
            }} for i, trigger in enumerate(spec["triggers"])],
            "behavior": spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
        },
    }


def ingress(model: Model, vpc_cidr: pulumi.Input[str], engine: EngineImage = VLLM,
            subnets: pulumi.Input[str] | None = None, certificate_arn: str | None = None
            ) -> dict[str, Any]:
    """Internal ALB (AWS Load Balancer Controller), reachable from the VPC range only.

    IP targets (no NodePort hop), health checks on /health, and an idle timeout long enough for a
    streamed completion that pauses between tokens under load (ALB default: 60 s). `subnets`
    (comma-separated ids) pins the ALB to the network's dedicated load-balancer subnets, the
    only CIDRs the model's NetworkPolicy admits besides the gateway and the scraper. With an ACM
    certificate (`eks.certificateArn`) it listens on HTTPS 443 only, with the platforms' TLS
    policy; without one, on plain HTTP 80 (the controller's default), which prod's policy config
    refuses even inside the VPC.
    https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/
    """
    a = "alb.ingress.kubernetes.io/"
    pinned = {f"{a}subnets": subnets} if subnets is not None else {}
    tls = {f"{a}certificate-arn": certificate_arn, f"{a}listen-ports": '[{"HTTPS": 443}]',
           f"{a}ssl-policy": ELB_TLS_POLICY} if certificate_arn else {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(model, annotations={
            f"{a}scheme": "internal",
            **pinned,
            f"{a}target-type": "ip",
            f"{a}inbound-cidrs": vpc_cidr,
            f"{a}healthcheck-path": engine.health_path,
            f"{a}success-codes": "200",
            f"{a}load-balancer-attributes": "idle_timeout.timeout_seconds=600,"
                                            "routing.http.drop_invalid_header_fields.enabled=true",
            f"{a}target-group-attributes": "deregistration_delay.timeout_seconds="
                                           f"{termination_grace_seconds(model)}",
            **tls,
        }),
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": model.name,
                                        "port": {"name": HTTP_PORT_NAME}}},
            }]}}],
        },
    }


_S3 = re.compile(r"^s3://([^/]+)/?(.*?)/?$")


def weights_read_policy(weights_uri: str, partition: str = "aws", *,
                        kms_key_arn: str | None = None, region: str = "") -> dict[str, Any]:
    """Read-only access to exactly the `weightsUri` prefix: list it, get its objects; with
    `kms_key_arn` (an SSE-KMS bucket) also decrypt with that key, through S3 in `region` only."""
    match = _S3.match(weights_uri)
    if match is None:
        raise ValueError(f"not an s3:// URI: {weights_uri!r}")
    bucket, prefix = match.group(1), match.group(2)
    decrypt = weights_decrypt_statements(
        [(kms_key_arn, bucket, prefix)] if kms_key_arn else [], region=region,
        partition=partition)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadWeights", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [f"arn:{partition}:s3:::{bucket}/{prefix}/*"]},
            {"Sid": "ListWeightsPrefix", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": [f"arn:{partition}:s3:::{bucket}"],
             "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}},
            *decrypt,
        ],
    }


def cluster_url(model: Model) -> str:
    return (f"http://{model.name}.{namespace_name(model)}.svc.cluster.local:{SERVICE_PORT}"
            "/v1/chat/completions")


def port_forward_command(model: Model) -> str:
    """Paste-ready: forward the Service, stream one chat completion, stop the forward."""
    body = json.dumps({
        "model": served_model_name(model),
        "messages": [{"role": "user", "content": "Say hello in one sentence."}],
        "max_tokens": 64,
        "stream": True,
    })
    return (f"kubectl -n {namespace_name(model)} port-forward svc/{model.name} 8080:{SERVICE_PORT}"
            f" & sleep 3 && curl -N http://localhost:8080/v1/chat/completions "
            f"-H 'Content-Type: application/json' -d '{body}'; kill $!")


# --------------------------------------------------------------------------------------------
# component


@dataclass(frozen=True)
class ModelServingArgs:
    """What one model's serving stack needs from the platform.

    `node_selector` selects the model's Karpenter NodePool by our stable node label (part 1);
    `depends_on` holds the NodePools, the device plugin and KEDA, so pods are not created before
    GPU capacity can exist; `metrics` is where the autoscaler reads vLLM's gauges.
    """

    model: Model
    naming: Naming
    cluster_name: pulumi.Input[str]
    region: str
    node_selector: Mapping[str, str]
    metrics: MetricsSource
    hosts: Sequence[GpuInstance] = ()
    hf_token: Any = None
    ingress: Ingress = "none"
    certificate_arn: str | None = None
    vpc_cidr: pulumi.Input[str] = ""
    load_balancer_subnet_ids: pulumi.Input[list[str]] | None = None
    """The network's dedicated load-balancer subnets (the ALB is pinned to them)."""
    load_balancer_cidrs: Sequence[pulumi.Input[str]] = ()
    """Their CIDRs, admitted by the NetworkPolicy with `internal-alb`."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    gateway_waiting_query: str | None = None
    """With the gateway on and `minReplicas: 0`: the PromQL that wakes the model."""


def _k8s_opts(opts: pulumi.ResourceOptions, *deps: pulumi.Resource | None
              ) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(depends_on=[d for d in deps if d is not None])
    )


class ModelServing(pulumi.ComponentResource):
    """Namespace, identity, vLLM Deployment, Service, PDB, autoscaler (and ALB) for one model."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelServingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-hosting:eks:ModelServing", name, None, opts)
        model = args.model
        child = pulumi.ResourceOptions(parent=self)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))

        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace(model)["metadata"],
                                   opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])

        sa_obj = service_account(model)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=sa_obj["metadata"],
            automount_service_account_token=False, opts=in_ns)
        role = self._weights_role(name, args, sa) if model.spec.weights_uri else None

        secret = None
        with_token = needs_hf_token(model, args.hf_token is not None)
        if with_token:
            sec = hf_token_secret(model, args.hf_token)
            secret = k8s.core.v1.Secret(
                f"{name}-hf-token", metadata=sec["metadata"], type=sec["type"],
                string_data=sec["stringData"], opts=in_ns)

        alb = args.ingress == "internal-alb"
        np_obj = network_policy(model, args.load_balancer_cidrs if alb else ())
        policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy", metadata=np_obj["metadata"], spec=np_obj["spec"],
            opts=in_ns)

        dep_obj = deployment(model, region=args.region, node_selector=args.node_selector,
                             with_hf_token=with_token, hosts=args.hosts)
        # Node launch + 10-20 GB image pull + a 10-minute load: well past Pulumi's 10-minute
        # default await. https://www.pulumi.com/registry/packages/kubernetes/api-docs/apps/v1/deployment/
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=dep_obj["metadata"], spec=dep_obj["spec"],
            opts=pulumi.ResourceOptions.merge(
                _k8s_opts(after, ns, sa, secret, role, policy),
                pulumi.ResourceOptions(custom_timeouts=rollout_timeouts(model))))
        svc_obj = service(model)
        self.service = k8s.core.v1.Service(f"{name}-service", metadata=svc_obj["metadata"],
                                           spec=svc_obj["spec"], opts=in_ns)
        pdb_obj = pod_disruption_budget(model)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=pdb_obj["metadata"],
                                          spec=pdb_obj["spec"], opts=in_ns)
        so = scaled_object(model, args.metrics,
                           gateway_waiting_query=args.gateway_waiting_query)
        k8s.apiextensions.CustomResource(
            f"{name}-scaler", api_version=so["apiVersion"], kind=so["kind"],
            metadata=so["metadata"], spec=so["spec"],
            opts=_k8s_opts(after, ns, self.deployment))
        if alb:
            subnets = (pulumi.Output.from_input(args.load_balancer_subnet_ids)
                       .apply(lambda ids: ",".join(ids))
                       if args.load_balancer_subnet_ids is not None else None)
            ing = ingress(model, args.vpc_cidr, subnets=subnets,
                          certificate_arn=args.certificate_arn)
            k8s.networking.v1.Ingress(
                f"{name}-ingress", metadata=ing["metadata"], spec=ing["spec"],
                opts=_k8s_opts(after, ns, self.service))

        self.url = pulumi.Output.from_input(cluster_url(model))
        self.register_outputs({"url": self.url})

    def _weights_role(self, name: str, args: ModelServingArgs,
                      sa: k8s.core.v1.ServiceAccount) -> aws.eks.PodIdentityAssociation:
        """IAM role reading only `weightsUri`, bound to the model's service account."""
        model = args.model
        tags = args.naming.tags(model=model.name)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        _, association = pod_identity_role(
            role_name=f"{name}-weights-role",
            policy_name=f"{name}-weights-read",
            association_name=f"{name}-pod-identity",
            description=f"vLLM pods of {model.name}: read {model.spec.weights_uri}",
            account=account.account_id,
            cluster_name=args.cluster_name,
            namespace=namespace_name(model),
            service_account=model.name,
            policy=partition.partition.apply(
                lambda p: json.dumps(weights_read_policy(
                    str(model.spec.weights_uri), p, kms_key_arn=model.spec.weights_kms_key_arn,
                    region=args.region))),
            tags=tags,
            opts=child,
            depends_on=[sa, *args.depends_on],
        )
        return association
