"""The EC2 Spot service-linked role, when a model runs on Spot.

EC2 launches Spot capacity through `AWSServiceRoleForEC2Spot`. The console creates it on first
use, but API callers (Karpenter, and a new account that never opened the Spot console) must
create it first: without it Karpenter's Spot launches fail and a Spot model's pool falls back to
on-demand, silently and at on-demand prices.
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
https://karpenter.sh/docs/getting-started/getting-started-with-karpenter/ ("create the Spot
service-linked role")
"""

from __future__ import annotations

from components.preflight.checks import AWS_ERRORS, Check, Context, aws_error, error_code

SPOT_ROLE = "AWSServiceRoleForEC2Spot"


def check(ctx: Context) -> list[Check]:
    spot = [m.name for m in ctx.config.models if m.spec.capacity == "spot"]
    if not spot:
        return []
    name = "spot service-linked role"
    try:
        role = ctx.clients("iam").get_role(RoleName=SPOT_ROLE)["Role"]
    except AWS_ERRORS as exc:
        if error_code(exc) == "NoSuchEntity":
            return [Check(name, "fail",
                          f"{SPOT_ROLE} does not exist; {', '.join(spot)} use Spot and would "
                          "launch on-demand or not at all",
                          "`aws iam create-service-linked-role --aws-service-name "
                          "spot.amazonaws.com` (once per account)")]
        return [aws_error(name, "iam:GetRole", exc, f"iam:GetRole on role/aws-service-role/"
                          f"spot.amazonaws.com/{SPOT_ROLE}")]
    return [Check(name, "pass", f"{role['Arn']} exists (Spot models: {', '.join(spot)})")]
