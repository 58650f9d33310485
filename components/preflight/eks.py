"""EKS pins against what EKS and SSM publish for the cluster's Kubernetes version.

`components/facts/charts.py` pins every EKS add-on build and the Karpenter AMI alias for each
supported minor; this replaces "verify on first deploy" with two reads:
* `eks:DescribeAddonVersions` per add-on: the pinned `addonVersion` must be listed with a
  `compatibilities[].clusterVersion` equal to the cluster's minor, else CreateAddon fails.
  https://docs.aws.amazon.com/eks/latest/APIReference/API_DescribeAddonVersions.html
* `ssm:GetParameter` on the public parameter Karpenter resolves the alias to (karpenter-provider-
  aws v1.14.1 `pkg/providers/amifamily/al2023.go` `resolvePath` and `bottlerocket.go`
  `DescribeImageQuery`): a missing parameter is Karpenter's "failed to discover any AMIs for
  alias", and no GPU node ever launches.
* `ec2:DescribeSnapshots` for `imageSnapshotId` (coldStart `bottlerocket-snapshot`).
"""

from __future__ import annotations

from components.facts import charts
from components.preflight.checks import AWS_ERRORS, Check, Context, aws_error, error_code

ADDON_PERMISSION = "eks:DescribeAddonVersions"


def ami_parameter(alias: str, kubernetes_version: str) -> str:
    """The SSM parameter behind a pinned `al2023@vX` / `bottlerocket@vX` alias, x86_64 NVIDIA
    variant (the GPU nodes'), built the way Karpenter builds it."""
    family, version = alias.split("@", 1)
    if family == "al2023":
        name = f"amazon-eks-node-al2023-x86_64-nvidia-{kubernetes_version}-{version}"
        return (f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/x86_64/"
                f"nvidia/{name}/image_id")
    if family == "bottlerocket":
        return (f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}-nvidia/x86_64/"
                f"{version.lstrip('v')}/image_id")
    raise ValueError(f"unknown AMI alias family in {alias!r}")


def gpu_ami_alias(cold_start: str) -> str:
    """`soci-parallel-pull` runs AL2023 GPU nodes, `bottlerocket-snapshot` Bottlerocket."""
    return (charts.BOTTLEROCKET_AMI_ALIAS if cold_start == "bottlerocket-snapshot"
            else charts.AL2023_AMI_ALIAS)


def addon_rows(ctx: Context, version: str) -> list[Check]:
    eks = ctx.clients("eks")
    rows: list[Check] = []
    for addon, pin in charts.eks_addons(version).by_addon_name().items():
        name = f"eks add-on {addon}"
        try:
            builds = [v for page in eks.get_paginator("describe_addon_versions").paginate(
                          kubernetesVersion=version, addonName=addon)
                      for a in page["addons"] for v in a["addonVersions"]]
        except AWS_ERRORS as exc:
            rows.append(aws_error(name, ADDON_PERMISSION, exc, ADDON_PERMISSION))
            continue
        listed = {b["addonVersion"]: b for b in builds}
        newest = ", ".join(b["addonVersion"] for b in builds[:3]) or "none"
        fix = (f"pin a listed build in components/facts/charts.py (EKS_ADDON_VERSIONS"
               f"['{version}']): `aws eks describe-addon-versions --kubernetes-version {version} "
               f"--addon-name {addon} --query 'addons[].addonVersions[].addonVersion'`")
        build = listed.get(pin)
        if build is None:
            rows.append(Check(name, "fail", f"{pin} is not a build EKS offers for Kubernetes "
                              f"{version} in {ctx.config.region}; newest: {newest}", fix))
            continue
        clusters = {c.get("clusterVersion") for c in build.get("compatibilities", [])}
        if version not in clusters:
            rows.append(Check(name, "fail", f"{pin} is listed but not compatible with "
                              f"Kubernetes {version} (compatible: "
                              f"{', '.join(sorted(c for c in clusters if c)) or 'none'})", fix))
            continue
        default = any(c.get("defaultVersion") for c in build.get("compatibilities", []))
        rows.append(Check(name, "pass", f"{pin} is offered for Kubernetes {version}"
                          + (" (EKS's default build)" if default else f"; newest: {newest}")))
    return rows


def ami_rows(ctx: Context, version: str, cold_start: str) -> list[Check]:
    alias = gpu_ami_alias(cold_start)
    path = ami_parameter(alias, version)
    name = f"eks gpu ami {alias}"
    try:
        value = ctx.clients("ssm").get_parameter(Name=path)["Parameter"]["Value"]
    except AWS_ERRORS as exc:
        if error_code(exc) == "ParameterNotFound":
            family_path = path.rsplit("/", 2)[0] + "/"
            return [Check(name, "fail",
                          f"no AMI for Kubernetes {version} in {ctx.config.region}: {path} does "
                          "not exist (Karpenter: failed to discover any AMIs for alias)",
                          f"pin a published release in components/facts/charts.py: `aws ssm "
                          f"get-parameters-by-path --region {ctx.config.region} --path "
                          f"{family_path} --query 'Parameters[].Name'`")]
        return [aws_error(name, "ssm:GetParameter", exc, f"ssm:GetParameter on {path}")]
    return [Check(name, "pass", f"{value} for Kubernetes {version} ({path})")]


def snapshot_rows(ctx: Context, snapshot: str) -> list[Check]:
    name = f"eks image snapshot {snapshot}"
    try:
        snaps = ctx.clients("ec2").describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    except AWS_ERRORS as exc:
        if error_code(exc) in ("InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"):
            return [Check(name, "fail", f"{snapshot} does not exist in {ctx.config.region} (or "
                          "is not shared with this account)",
                          "build it with bottlerocket-images-cache in this region and set "
                          "llm-hosting:eks.imageSnapshotId")]
        return [aws_error(name, "ec2:DescribeSnapshots", exc, "ec2:DescribeSnapshots")]
    state = snaps[0].get("State") if snaps else "missing"
    if state != "completed":
        return [Check(name, "fail", f"{snapshot} is {state}; nodes cannot start from it yet",
                      "wait for it to complete, then deploy")]
    return [Check(name, "pass", f"{snapshot} is completed")]


def check(ctx: Context) -> list[Check]:
    config = ctx.config
    if config.platform != "eks":
        return []
    cfg = config.eks
    rows = addon_rows(ctx, cfg.kubernetes_version)
    rows += ami_rows(ctx, cfg.kubernetes_version, cfg.cold_start)
    if cfg.image_snapshot_id is not None:
        rows += snapshot_rows(ctx, cfg.image_snapshot_id)
    return rows
