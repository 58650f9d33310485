"""llm-hosting: config -> network -> one platform -> exports."""

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components import config as stack_config
from components.network import Network, NetworkArgs
from components.platform_api import PlatformArgs
from components.platforms import CONFIG_CHECKS, PLATFORMS
from components.report import model_summaries
from components.tags import Naming

config = stack_config.load(CONFIG_CHECKS)
naming = Naming(config.project, config.stack, config.environment, config.tags,
                config.protection)

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

platform = PLATFORMS[config.platform]
network = Network(
    "network",
    NetworkArgs(naming, config.network, config.region, platform.interface_endpoints,
                platform.load_balancer_subnets),
    providers,
)
serving = platform.factory(config.platform, PlatformArgs(config, network, naming), providers)

pulumi.export("platform", config.platform)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("models", model_summaries(config))
for key, value in serving.exports.items():
    pulumi.export(key, value)
