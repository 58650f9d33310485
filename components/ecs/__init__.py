"""ECS platform: GPU capacity providers with warm pools (see docs/ecs.md)."""

from components.ecs.platform import EcsPlatform

__all__ = ["EcsPlatform"]
