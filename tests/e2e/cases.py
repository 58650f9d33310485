"""The ephemeral stacks of the real-cloud suite: the cheapest model on each platform.

Each is Qwen2.5-7B-Instruct (Apache-2.0, not gated: no Hugging Face token), 2,048 tokens per
sequence, one replica, `dev` (nothing protected, a single NAT gateway, two AZs), so sizing puts
it on the cheapest GPU each platform sells for it: ml.g6.xlarge on SageMaker, g6.xlarge on ECS
and EKS (1x L4). No warm pool on ECS, two small system nodes on EKS, rolling endpoint updates on
SageMaker: nothing idles that the smoke test does not use.

How the smoke test reaches each (all three entry points are private or IAM-authenticated):
* SageMaker: the runtime API, from anywhere with the test's credentials.
* ECS: an SSM port-forwarding session through one of the stack's GPU hosts to the internal ALB.
  The hosts' security group allows only HTTPS out, so the tunnel adds an egress rule for port
  80 to the VPC while it is open and revokes it before `destroy`. Needs the AWS CLI and the
  Session Manager plugin.
* EKS: `kubectl port-forward` to each model's Service through the API server, which the stack
  opens to `LLM_HOSTING_E2E_CIDR` (your runner's egress /32) only. Needs kubectl and the AWS CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3

from tests.e2e.orchestrate import Case

REGION = os.environ.get("LLM_HOSTING_E2E_REGION", "us-east-1")
MODEL = {
    "name": "qwen-7b", "modelId": "Qwen/Qwen2.5-7B-Instruct", "engine": "vllm",
    "maxInputTokens": 1024, "maxTotalTokens": 2048, "concurrencyTarget": 2,
    "minReplicas": 1, "maxReplicas": 1, "capacity": "on-demand",
}


def base(platform: str) -> dict[str, Any]:
    return {
        "aws:region": REGION,
        "pulumi:disable-default-providers": ["aws", "aws-native", "kubernetes"],
        "llm-hosting:environment": "dev",
        "llm-hosting:platform": platform,
        "llm-hosting:network": {"availabilityZones": 2, "natGateways": "single"},
        "llm-hosting:models": [dict(MODEL)],
        "llm-hosting:tags": {"purpose": "llm-hosting-e2e"},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, seconds: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tunnel exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(1)
    raise RuntimeError(f"tunnel on port {port} not up after {seconds:.0f} s")


@contextlib.contextmanager
def _process(args: list[str], port: int) -> Iterator[None]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, 60, process)
        yield
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


@contextlib.contextmanager
def ecs_tunnel(outputs: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """SSM port forwarding through a GPU host of this stack to the internal ALB."""
    ec2 = boto3.client("ec2", region_name=REGION)
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:project", "Values": ["llm-hosting"]},
        {"Name": "vpc-id", "Values": [str(outputs["vpcId"])]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    instance = reservations[0]["Instances"][0]
    group = instance["SecurityGroups"][0]["GroupId"]
    cidr = ec2.describe_vpcs(VpcIds=[str(outputs["vpcId"])])["Vpcs"][0]["CidrBlock"]
    rule = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "IpRanges": [{"CidrIp": cidr, "Description": "e2e SSM tunnel to the ALB"}]}]
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=rule)
    port = _free_port()
    try:
        with _process(["aws", "ssm", "start-session", "--region", REGION,
                       "--target", instance["InstanceId"],
                       "--document-name", "AWS-StartPortForwardingSessionToRemoteHost",
                       "--parameters", f"host={outputs['loadBalancerDnsName']},portNumber=80,"
                       f"localPortNumber={port}"], port):
            yield {name: f"http://127.0.0.1:{port}/{name}/v1" for name in outputs["endpoints"]}
    finally:
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=rule)


@contextlib.contextmanager
def eks_port_forward(outputs: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """`kubectl port-forward` to each model's Service (`endpoints` are in-cluster URLs)."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        value = outputs["kubeconfig"]
        kubeconfig.write_text(value if isinstance(value, str) else json.dumps(value))
        urls: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            for name, url in dict(outputs["endpoints"]).items():
                host = urllib.parse.urlsplit(str(url))
                service, namespace = (host.hostname or "").split(".")[:2]
                port = _free_port()
                stack.enter_context(_process(
                    ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace,
                     "port-forward", f"svc/{service}", f"{port}:{host.port}"], port))
                urls[name] = f"http://127.0.0.1:{port}/v1"
            yield urls


def cases() -> dict[str, tuple[Case | None, str]]:
    """platform -> (case, why it is skipped when None)."""
    out: dict[str, tuple[Case | None, str]] = {}
    sagemaker = base("sagemaker")
    sagemaker["llm-hosting:sagemaker"] = {"endpointDeployment": "rolling"}
    out["sagemaker"] = (Case("sagemaker", sagemaker, cap_seconds=3600), "")

    missing = [tool for tool in ("aws", "session-manager-plugin") if shutil.which(tool) is None]
    ecs = base("ecs")
    ecs["llm-hosting:ecs"] = {"warmPoolSize": 0}
    out["ecs"] = ((None, f"needs {' and '.join(missing)} on PATH for the SSM tunnel") if missing
                  else (Case("ecs", ecs, reach=ecs_tunnel, cap_seconds=3600), ""))

    cidr = os.environ.get("LLM_HOSTING_E2E_CIDR")
    missing = [tool for tool in ("aws", "kubectl") if shutil.which(tool) is None]
    eks = base("eks")
    eks["llm-hosting:eks"] = {"systemNodeCount": 2, "publicAccessCidrs": [cidr] if cidr else []}
    if not cidr:
        out["eks"] = (None, "set LLM_HOSTING_E2E_CIDR to this runner's egress /32: the private "
                            "API endpoint is opened to it for the run")
    elif missing:
        out["eks"] = (None, f"needs {' and '.join(missing)} on PATH")
    else:
        out["eks"] = (Case("eks", eks, reach=eks_port_forward, cap_seconds=4500), "")
    return out
