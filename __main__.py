"""llm-hosting: config -> network -> one platform -> exports."""

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components import config as stack_config
from components.network import Network, NetworkArgs
from components.platforms import PLATFORM_ENDPOINTS, PLATFORMS, PlatformArgs
from components.report import model_summaries
from components.tags import Naming

config = stack_config.load(available_platforms=PLATFORMS)
naming = Naming(config.project, config.stack, config.environment, config.tags)

# Explicit AWS providers carry region and the tag set to every AWS resource; the stack disables
# default providers, so a resource that forgot its provider fails loudly instead of going
# untagged into whatever region the shell happens to point at. aws-native serves only what
# pulumi-aws lacks (SageMaker inference components).
default_tags = {"tags": naming.tags()}
providers = pulumi.ResourceOptions(
    providers={
        "aws": aws.Provider("aws", region=config.region, default_tags=default_tags),
        "aws-native": aws_native.Provider(
            "aws-native", region=config.region, default_tags=default_tags
        ),
    }
)

network = Network(
    "network",
    NetworkArgs(naming, config.network, config.region, PLATFORM_ENDPOINTS[config.platform]),
    providers,
)
platform = PLATFORMS[config.platform](
    config.platform, PlatformArgs(config, network, naming), providers
)

pulumi.export("platform", config.platform)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("models", model_summaries(config))
for key, value in platform.exports.items():
    pulumi.export(key, value)
