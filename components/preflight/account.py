"""Credentials, account and region, and the AZs the stack's VPC will span.

Runs first and alone: without a caller identity every other call fails the same way, so a
credentials problem is reported once instead of once per check.
"""

from __future__ import annotations

import os

from botocore.exceptions import NoCredentialsError

from components.preflight.checks import AWS_ERRORS, Check, Context, aws_error, error_code

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def identity(ctx: Context) -> list[Check]:
    """sts:GetCallerIdentity: needs no permission, so a failure is the credentials themselves."""
    name = "credentials"
    try:
        who = ctx.clients("sts").get_caller_identity()
    except NoCredentialsError:
        return [Check(name, "fail", "no AWS credentials found (environment, AWS_PROFILE, SSO)",
                      "export AWS_PROFILE=<profile> (or `aws sso login --profile <profile>`), "
                      "then run preflight again")]
    except AWS_ERRORS as exc:
        if error_code(exc) in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                               "SignatureDoesNotMatch", "UnrecognizedClientException"):
            return [Check(name, "fail", f"AWS rejected the credentials: {error_code(exc)}",
                          "refresh them (`aws sso login`, new session token) and run again")]
        return [aws_error(name, "sts:GetCallerIdentity", exc, "sts:GetCallerIdentity")]
    ctx.account = who["Account"]
    ctx.partition = who["Arn"].split(":")[1]
    return [Check(name, "pass", f"account {who['Account']} as {who['Arn']}")]


def region(ctx: Context) -> list[Check]:
    """The checks run in the stack's `aws:region`, as `pulumi up` deploys (the stack's explicit
    providers take it from config, never from the shell). A shell region that differs is worth
    a warning: the AWS CLI commands the stack exports (invoke, kubeconfig) carry `--region`, but
    anything else typed in that shell goes to the other region."""
    stack_region = ctx.config.region
    rows = [Check("region", "pass", f"{stack_region} (the stack's aws:region)")]
    for variable in REGION_VARIABLES:
        value = os.environ.get(variable)
        if value and value != stack_region:
            rows = [Check("region", "warn",
                          f"{variable}={value} but the stack deploys to {stack_region}; "
                          f"preflight checked {stack_region}",
                          f"export {variable}={stack_region}, or change the stack's aws:region "
                          "if the other region is meant")]
            break
    return rows


def availability_zones(ctx: Context) -> list[Check]:
    """The AZs awsx gives the VPC: the first `network.availabilityZones` names of
    `aws.getAvailabilityZones()` (pulumi-awsx `awsx/ec2/vpc.ts`, `getDefaultAzs`), which the
    AWS provider returns sorted by name from DescribeAvailabilityZones without filters
    (terraform-provider-aws `ec2_availability_zones_data_source.go`)."""
    name, want = "availability zones", ctx.config.network.availability_zones
    try:
        zones = ctx.clients("ec2").describe_availability_zones()["AvailabilityZones"]
    except AWS_ERRORS as exc:
        return [aws_error(name, "ec2:DescribeAvailabilityZones", exc,
                          "ec2:DescribeAvailabilityZones")]
    ordered = sorted(zones, key=lambda z: z["ZoneName"])
    if len(ordered) < want:
        return [Check(name, "fail",
                      f"{ctx.config.region} has {len(ordered)} zone(s); network."
                      f"availabilityZones is {want} (awsx refuses the VPC)",
                      f"set llm-hosting:network.availabilityZones to {len(ordered)} or less")]
    chosen = ordered[:want]
    ctx.azs = tuple(z["ZoneName"] for z in chosen)
    odd = [z["ZoneName"] for z in chosen if z.get("ZoneType", "availability-zone")
           != "availability-zone"]
    if odd:
        return [Check(name, "warn",
                      f"the VPC would span {', '.join(ctx.azs)}; {', '.join(odd)} is a Local or "
                      "Wavelength Zone (opted in), where GPU types are rarely offered",
                      "opt out of the zone group, or expect capacity only in the other AZs")]
    return [Check(name, "pass", f"the VPC spans {', '.join(ctx.azs)} (first {want} of "
                                f"{len(ordered)}, as awsx picks them)")]
