"""Render what the program registers for the example stacks and the option matrix, and hold it
to Checkov with an allowlist (docs/hardening.md).

    venv/bin/python -m scripts.render_k8s --out build/checkov                 # render only
    venv/bin/python -m scripts.render_k8s --checkov .checkov-venv/bin/checkov # render + scan

What is rendered, from the offline run of every stack (`components.offline.run_program`):
* every Kubernetes object the program registers itself (Namespaces, ServiceAccounts,
  Deployments, Services, PDBs, NetworkPolicies, Ingresses, ConfigMaps, custom resources), as
  YAML exactly as the program sends it (Secret values redacted). Objects inside the Helm charts
  the program installs (Karpenter, the NVIDIA device plugin, kube-prometheus-stack, the DCGM
  exporter, KEDA, the AWS Load Balancer Controller) are rendered by Helm at deploy time from
  charts this program does not vendor, so they are out of reach here; their values are set in
  components/eks/ and their hardening is each chart's.
* every ECS task definition, as Terraform (`aws_ecs_task_definition` in a `.tf` file):
  pulumi-aws is the Terraform AWS provider bridged, so the resource's inputs are that Terraform
  resource's arguments (camelCase here, snake_case there), and Checkov's Terraform checks read
  them as they read a user's own `.tf` file. (Checkov has no ECS container checks for
  CloudFormation; its CKV_AWS_334 "non-privileged" reads a `privilege` key ECS does not have,
  so it never fails: tests/test_ecs.py and the policy pack hold `privileged: false` instead.)

Checkov runs from its own virtualenv (its pins, boto3==1.35.49 and packaging<24, conflict with
ours). Every failure must be in `ALLOWLIST` below, each with the object it applies to and why;
an allowlist entry that no longer matches anything is an error too, so the list stays honest.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.offline import Graph, unwrap

CHECKOV_VERSION = "3.3.30"
"""Pinned in .ci/run and the README command; bump the three together."""

FRAMEWORKS = ("kubernetes", "terraform")


@dataclass(frozen=True)
class Allowed:
    """A Checkov check accepted on matching objects: `resource` is an fnmatch pattern on
    Checkov's resource id (`Kind.namespace.name` for Kubernetes, `type.name` for Terraform)."""

    check: str
    resource: str
    reason: str


ALLOWLIST: tuple[Allowed, ...] = (
    # Before the model servers' entries: a failure counts against the first entry it matches.
    Allowed("CKV_K8S_43", "Deployment.llm-gateway.llm-gateway",
            "the gateway's image by tag, not digest: BerriAI publishes the release tag and its "
            "cosign verification, no digest in a source we can cite "
            "(components/facts/images.py). Mirror the tag into your ECR and pin the digest "
            "there (docs/hardening.md)."),
    Allowed("CKV_K8S_11", "Deployment.llm-*.*",
            "no CPU limit on model servers: a CFS quota throttles vLLM's scheduler and "
            "tokenizer threads mid-step and stalls every stream of the batch; the pod requests "
            "its whole share of the host's CPUs (components/eks/serving.py `pod_resources`) and "
            "is alone on its GPU node, so there is nothing to protect with a cap."),
    Allowed("CKV_K8S_15", "Deployment.llm-*.*",
            "imagePullPolicy IfNotPresent, not Always: the vLLM image is ~29 GB unpacked and the "
            "node already holds it (SOCI/snapshot cold start, docs/startup.md); Always re-asks "
            "the registry on every restart and fails the start when Docker Hub throttles. The "
            "tag is pinned, never `latest`."),
    Allowed("CKV_K8S_43", "Deployment.llm-*.*",
            "image by tag, not digest: vllm/vllm-openai publishes no digest in a source we can "
            "cite (only Docker Hub's tag page). Mirror the tag into your ECR and pin the digest "
            "there (docs/hardening.md)."),
    Allowed("CKV_K8S_35", "Deployment.llm-*.*",
            "the Hub token is an environment variable from a Secret (secretKeyRef), not a "
            "file: huggingface_hub reads HF_TOKEN from the environment only, and the value never "
            "appears in the manifest. Models with weightsUri get no token at all."),
    Allowed("CKV_AWS_336", "aws_ecs_task_definition.ecs-small-task",
            "the option matrix's shared ECS task runs a TGI engine: TGI 3.3.5's layout for a "
            "non-root, read-only run is not verified, so that one container keeps a writable "
            "root filesystem (as root, every capability dropped, not privileged); the vLLM, "
            "weights and collector containers of the same task are read-only."),
)


# --- rendering ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Recorded inputs as plain YAML values: integral floats back to ints (the mocks deliver
    numbers as floats), secrets unwrapped."""
    value = unwrap(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_K8S_TYPE = re.compile(r"^kubernetes:(?:(?P<group>[^:]+)/)?(?P<version>[^/:]+):(?P<kind>\w+)$")


def kubernetes_objects(graph: Graph) -> list[dict[str, Any]]:
    """Every Kubernetes object the program registers (Helm releases excluded: see module doc)."""
    objects = []
    for r in graph.resources:
        match = _K8S_TYPE.match(r.type)
        if match is None or match["kind"] in ("Release", "Chart"):
            continue
        group, version, kind = match["group"], match["version"], match["kind"]
        api = version if group in (None, "core") else f"{group}/{version}"
        body = {k: v for k, v in _plain(r.inputs).items()
                if k not in ("apiVersion", "kind") and not k.startswith("__")}
        if kind == "Secret":
            body = copy.deepcopy(body)
            for field in ("stringData", "data"):
                if field in body:
                    body[field] = {k: "REDACTED" for k in body[field]}
        objects.append({"apiVersion": api, "kind": kind, **body})
    return objects


def _hcl(value: Any) -> str:
    """A JSON value as an HCL expression (JSON literals are HCL; `${`/`%{` would start a
    template, so they are escaped)."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _block(name: str, body: Mapping[str, Any], indent: str) -> list[str]:
    lines = [f"{indent}{name} {{"]
    for key, value in body.items():
        if isinstance(value, dict):
            lines += _block(_snake(key), value, indent + "  ")
        else:
            lines.append(f"{indent}  {_snake(key)} = {_hcl(value)}")
    return [*lines, f"{indent}}}"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: Container fields no Checkov ECS check reads (CKV_AWS_97/249/334/335/336 read volumes, roles,
#: `privilege`, `pidMode`, `readonlyRootFilesystem`) and that Checkov 3.3.30's `jsonencode`
#: evaluator cannot parse (the health check's quoted shell command): with them the whole list
#: stays an unevaluated string and CKV_AWS_336 passes without looking. `judge` fails a run in
#: which any task definition went unevaluated.
_UNREAD_BY_CHECKOV = ("healthCheck",)
#: Reported for a task definition only when Checkov evaluated its container list.
EVALUATED_MARKER = "CKV_AWS_335"

_TASK_ARGS = ("family", "networkMode", "requiresCompatibilities", "cpu", "memory",
              "executionRoleArn", "taskRoleArn")


def ecs_task_definitions(graph: Graph) -> str:
    """ECS task definitions as Terraform (`aws_ecs_task_definition`), containers in
    `jsonencode(...)` as a Terraform user writes them.

    HCL, not `.tf.json`: Checkov 3.3.30 reads a `.tf.json` `false` as a true value (a container
    with `readonlyRootFilesystem: false` passes CKV_AWS_336 there), while it evaluates
    `jsonencode` in HCL to the real list. Verified with a failing fixture in
    tests/test_render_k8s.py."""
    blocks = []
    for r in graph.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        args = _plain(r.inputs)
        definitions = args["containerDefinitions"]
        if isinstance(definitions, str):
            definitions = json.loads(definitions)
        definitions = [{k: v for k, v in c.items() if k not in _UNREAD_BY_CHECKOV}
                       for c in definitions]
        name = re.sub(r"[^A-Za-z0-9_-]", "_", r.name)
        lines = [f'resource "aws_ecs_task_definition" "{name}" {{']
        lines += [f"  {_snake(k)} = {_hcl(args[k])}" for k in _TASK_ARGS if k in args]
        lines.append(f"  container_definitions = jsonencode({_hcl(definitions)})")
        for volume in args.get("volumes", []):  # Pulumi's `volumes` is Terraform's `volume`
            lines += _block("volume", volume, "  ")
        blocks.append("\n".join([*lines, "}"]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def stacks() -> Iterator[tuple[str, Graph]]:
    """The example stacks and the option matrix's variants (tests/iam_matrix.py)."""
    from tests.iam_matrix import NAMES, graph

    for name in NAMES:
        yield name.removesuffix(".yaml").replace(".", "-"), graph(name)


def render(out: Path) -> dict[str, int]:
    """Write one directory per stack; returns objects written per stack."""
    if out.exists():
        shutil.rmtree(out)
    counts: dict[str, int] = {}
    for name, graph in stacks():
        folder = out / name
        folder.mkdir(parents=True)
        objects = kubernetes_objects(graph)
        if objects:
            (folder / "kubernetes.yaml").write_text(
                yaml.safe_dump_all(objects, sort_keys=False, width=120))
        tasks = ecs_task_definitions(graph)
        if tasks:
            (folder / "ecs-task-definitions.tf").write_text(tasks)
        counts[name] = len(objects) + tasks.count('resource "aws_ecs_task_definition"')
    return counts


# --- checking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str
    file: str


@dataclass(frozen=True)
class Verdict:
    passed: int
    failed: list[Finding]
    allowlisted: list[tuple[Finding, Allowed]]
    unused: list[Allowed]
    unevaluated: list[str]
    """ECS task definitions whose container list Checkov did not evaluate."""


def _reports(raw: Any) -> list[Mapping[str, Any]]:
    return raw if isinstance(raw, list) else [raw]


def judge(raw: Any, allowlist: tuple[Allowed, ...] = ALLOWLIST) -> Verdict:
    """Checkov's JSON report against the allowlist."""
    passed, failed, allowed = 0, [], []
    used: set[Allowed] = set()
    tasks: set[str] = set()
    evaluated: set[str] = set()
    for report in _reports(raw):
        results = report.get("results", {})
        passed += len(results.get("passed_checks", []))
        for item in [*results.get("passed_checks", []), *results.get("failed_checks", [])]:
            key = f"{item.get('file_path', '')}:{item['resource']}"
            if item["resource"].startswith("aws_ecs_task_definition."):
                tasks.add(key)
                if item["check_id"] == EVALUATED_MARKER:
                    evaluated.add(key)
        for item in results.get("failed_checks", []):
            finding = Finding(item["check_id"], item["resource"], item.get("file_path", ""))
            entry = next((a for a in allowlist if a.check == finding.check
                          and fnmatch.fnmatchcase(finding.resource, a.resource)), None)
            if entry is None:
                failed.append(finding)
            else:
                allowed.append((finding, entry))
                used.add(entry)
    return Verdict(passed, failed, allowed, [a for a in allowlist if a not in used],
                   sorted(tasks - evaluated))


def scan(checkov: str, out: Path) -> Any:
    """Run Checkov over `out` (no network: no platform download, no API key)."""
    cmd = [checkov, "--directory", str(out), "--framework", *FRAMEWORKS, "--output", "json",
           "--skip-download", "--compact"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"checkov failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/checkov"),
                        help="directory to render into (replaced)")
    parser.add_argument("--checkov", help="path of the checkov executable; omitted: render only")
    args = parser.parse_args(argv)

    start = time.monotonic()
    counts = render(args.out)
    rendered = time.monotonic() - start
    print(f"rendered {sum(counts.values())} objects from {len(counts)} stacks into {args.out} "
          f"in {rendered:.1f} s")
    if not args.checkov:
        return 0
    start = time.monotonic()
    verdict = judge(scan(args.checkov, args.out))
    scanned = time.monotonic() - start
    for finding, _entry in verdict.allowlisted:
        print(f"allowlisted {finding.check} {finding.resource} ({finding.file})")
    for finding in verdict.failed:
        print(f"FAILED {finding.check} {finding.resource} ({finding.file})")
    for task in verdict.unevaluated:
        print(f"UNEVALUATED {task}: Checkov did not read its container definitions")
    for entry in verdict.unused:
        print(f"STALE allowlist entry {entry.check} {entry.resource}: matches no failure")
    print(f"checkov {CHECKOV_VERSION}: {verdict.passed} passed, {len(verdict.failed)} failed, "
          f"{len(verdict.allowlisted)} allowlisted ({len(ALLOWLIST)} entries) in "
          f"{scanned:.1f} s")
    return 1 if verdict.failed or verdict.unused or verdict.unevaluated else 0


if __name__ == "__main__":
    sys.exit(main())
