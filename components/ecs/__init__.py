"""ECS platform: GPU capacity providers with warm pools (see docs/ecs.md).

Deliberately empty of imports (as components/sagemaker): config validation imports
`components.ecs.sharing` without pulling in a Pulumi provider package. The component is
`components.ecs.platform.EcsPlatform`.
"""
