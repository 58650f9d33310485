"""Pinned serving images: one place to bump an engine version, read by every platform.

Pins are exact tags (never `latest`), each with its source and the date it was checked, so a
rollout happens because someone changed this file, not because a registry moved a tag.
"""

from __future__ import annotations

# --- engine images for EKS and ECS (public registries) -------------------------------------

# --- SageMaker deep learning containers (per-region ECR accounts) ---------------------------
