"""EKS platform: cluster, managed node groups, Karpenter GPU pools, NVIDIA device plugin."""

from components.eks.platform import EksPlatform

__all__ = ["EksPlatform"]
