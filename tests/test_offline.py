"""The offline runner refuses what a real `pulumi up` refuses although the SDK's mocks accept it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from components.offline import EngineCheckError, run_program


def test_resource_and_invoke_without_provider_fail_when_defaults_are_disabled():
    def program() -> None:
        aws.get_partition_output()
        aws.s3.Bucket("orphan")

    with pytest.raises(EngineCheckError) as err:
        run_program({"pulumi:disable-default-providers": '["aws"]'}, program=program)
    assert sorted(err.value.problems) == [
        "Default provider for 'aws' disabled. 'aws:s3/bucket:Bucket' must use an explicit "
        "provider.",
        "Invoke: Default provider for 'aws' disabled. 'aws:index/getPartition:getPartition' "
        "must use an explicit provider.",
    ]


def test_remote_component_needs_its_own_provider_under_a_wildcard():
    # awsx.ec2.Vpc is constructed by the awsx provider: `providers={"aws": ...}` only reaches
    # its children, so `["*"]` stops it (pulumi/pulumi#13071).
    import pulumi_awsx as awsx

    def program() -> None:
        provider = aws.Provider("aws", region="us-east-1")
        awsx.ec2.Vpc("vpc", opts=pulumi.ResourceOptions(providers={"aws": provider}))

    with pytest.raises(EngineCheckError) as err:
        run_program({"pulumi:disable-default-providers": ["*"]}, program=program)
    assert err.value.problems == (
        "Default provider for 'awsx' disabled. 'awsx:ec2:Vpc' must use an explicit provider.",
    )
    run_program({"pulumi:disable-default-providers": ["aws"]}, program=program)


def test_explicit_provider_passes():
    def program() -> None:
        provider = aws.Provider("aws", region="us-east-1")
        aws.get_partition_output(opts=pulumi.InvokeOutputOptions(provider=provider))
        aws.s3.Bucket("owned", opts=pulumi.ResourceOptions(provider=provider))

    graph = run_program({"pulumi:disable-default-providers": ["aws"]}, program=program)
    assert "pulumi:providers:aws::aws::" in graph.one("aws:s3/bucket:Bucket").provider
    (invoke,) = graph.invoked
    assert "pulumi:providers:aws::aws::" in invoke.provider


def test_resource_created_inside_apply_is_refused():
    def program() -> None:
        bucket = aws.s3.Bucket("first")
        bucket.id.apply(lambda i: aws.s3.BucketPolicy("late", bucket=i, policy="{}"))

    with pytest.raises(EngineCheckError) as err:
        run_program({}, program=program)
    assert err.value.problems == (
        "aws:s3/bucketPolicy:BucketPolicy 'late' is created inside an Output.apply callback: "
        "`pulumi preview` cannot show it",
    )
