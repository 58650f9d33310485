"""User data for ECS GPU container instances (pure; no Pulumi).

What it does, and why:
* `/etc/ecs/ecs.config` joins the cluster with GPU support (`ECS_ENABLE_GPU_SUPPORT`), and
  `ECS_WARM_POOLS_CHECK=true` so an instance being prepared for the warm pool does not register
  and receive tasks. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-warm-pool.html
* `ECS_AWSVPC_BLOCK_IMDS=true`: awsvpc tasks cannot reach IMDS, so they can never borrow the
  instance role; containers get credentials from their task role only.
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html
* `ECS_IMAGE_PULL_BEHAVIOR=prefer-cached`: a task uses the engine image pre-pulled below.
* The CloudWatch agent publishes NVIDIA GPU utilization/memory per Auto Scaling group (Container
  Insights on ECS reports GPU reservation, not utilization).
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-NVIDIA-GPU.html
* A boot-time unit runs on every start: while the instance is headed for the warm pool
  (`Warmed:*` target lifecycle state) it pulls the serving images onto the EBS root volume,
  then completes the launch lifecycle hook. Because the pool is `Stopped` (not terminated), the
  pulled layers survive, and a scale-out skips the 10+ GB pull. On the boot that moves it into
  service it completes the hook at once.
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from components.ecs.iam import GPU_METRICS_NAMESPACE
from components.ecs.placement import HOST_RESERVED_MEMORY_MIB

LIFECYCLE_HOOK_NAME = "llm-hosting-warm-pool-prepare"


def ecs_agent_config(cluster_name: str) -> dict[str, str]:
    return {
        "ECS_CLUSTER": cluster_name,
        "ECS_ENABLE_GPU_SUPPORT": "true",
        "ECS_WARM_POOLS_CHECK": "true",
        "ECS_AWSVPC_BLOCK_IMDS": "true",
        "ECS_IMAGE_PULL_BEHAVIOR": "prefer-cached",
        "ECS_RESERVED_MEMORY": str(HOST_RESERVED_MEMORY_MIB),
        "ECS_CONTAINER_STOP_TIMEOUT": "120s",  # let in-flight streams finish on scale-in
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true",
    }


def cloudwatch_agent_config() -> dict[str, object]:
    return {
        "agent": {"metrics_collection_interval": 60},
        "metrics": {
            "namespace": GPU_METRICS_NAMESPACE,
            "append_dimensions": {
                "AutoScalingGroupName": "${aws:AutoScalingGroupName}",
                "InstanceId": "${aws:InstanceId}",
            },
            "aggregation_dimensions": [["AutoScalingGroupName"]],
            "metrics_collected": {
                "nvidia_gpu": {
                    "measurement": ["utilization_gpu", "memory_used", "memory_total",
                                    "temperature_gpu", "power_draw"],
                }
            },
        },
    }


_AGENT = r"""#!/bin/bash
set -euo pipefail
cat <<'ECSCONFIG' >> /etc/ecs/ecs.config
@AGENT@
ECSCONFIG
"""

_WARM_POOL = r"""
# The lifecycle hook must always be completed: everything after the unit is enabled is optional,
# so a failed package install can no longer hold a launch in Pending:Wait for the heartbeat.
command -v aws >/dev/null || dnf install -y awscli-2 || echo "llm-hosting: awscli-2 install failed"
cat <<'PREPARE' > /usr/local/sbin/llm-hosting-prepare
#!/bin/bash
# Runs on every boot: pull images while headed for the warm pool, then release the hook.
TOKEN=$(curl -sf --retry 5 --retry-connrefused -X PUT http://169.254.169.254/latest/api/token \
  -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
md() { curl -sf --retry 5 -H "X-aws-ec2-metadata-token: $TOKEN" \
  "http://169.254.169.254/latest/meta-data/$1"; }
INSTANCE_ID=$(md instance-id)
STATE=$(md autoscaling/target-lifecycle-state || echo InService)
if [[ "$STATE" == Warmed:* ]]; then
@PULLS@
fi
@COMPLETE@
PREPARE
chmod 0755 /usr/local/sbin/llm-hosting-prepare

cat <<'UNIT' > /etc/systemd/system/llm-hosting-prepare.service
[Unit]
Description=Prepare a GPU instance for the warm pool (llm-hosting)
After=docker.service network-online.target
Wants=docker.service network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/llm-hosting-prepare

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now --no-block llm-hosting-prepare.service
"""

_GPU_METRICS = r"""
# GPU utilization metrics: best effort, never blocks the instance from serving.
if dnf install -y amazon-cloudwatch-agent; then
  cat <<'CWCONFIG' > /opt/aws/amazon-cloudwatch-agent/etc/llm-hosting-gpu.json
@CW@
CWCONFIG
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
    -c file:/opt/aws/amazon-cloudwatch-agent/etc/llm-hosting-gpu.json \
    || echo "llm-hosting: CloudWatch agent did not start"
else
  echo "llm-hosting: amazon-cloudwatch-agent install failed; no GPU utilization metrics"
fi
"""


def user_data(
    *,
    cluster_name: str,
    region: str,
    images: Sequence[str],
    warm_pool_group: str | None,
) -> str:
    """The instance's bash user data. `warm_pool_group` is the on-demand group's name when it
    has a warm pool (and so the lifecycle hook): only then is the boot unit that pre-pulls
    `images` and completes the hook installed. Spot groups pass None and pull at task start."""
    agent = "\n".join(f"{k}={v}" for k, v in ecs_agent_config(cluster_name).items())
    script = _AGENT.replace("@AGENT@", agent)
    if warm_pool_group is not None:
        pulls = "\n".join(f"  docker pull {image} || true" for image in images)
        # Retried: a transient API or credential error would otherwise hold the instance in
        # Pending:Wait until the heartbeat timeout.
        complete = (
            "for attempt in 1 2 3 4 5; do\n"
            f"  aws autoscaling complete-lifecycle-action --region {region} "
            f"--auto-scaling-group-name {warm_pool_group} "
            f"--lifecycle-hook-name {LIFECYCLE_HOOK_NAME} "
            '--instance-id "$INSTANCE_ID" --lifecycle-action-result CONTINUE && break\n'
            '  echo "llm-hosting: complete-lifecycle-action attempt $attempt failed"; sleep 10\n'
            "done"
        )
        script += (_WARM_POOL.replace("@PULLS@", pulls or "  true")
                   .replace("@COMPLETE@", complete))
    return script + _GPU_METRICS.replace("@CW@", json.dumps(cloudwatch_agent_config(), indent=1))
