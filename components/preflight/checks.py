"""What every preflight check returns, and the context the checks share.

A check is a row of the report: its name, a status, what was found, and how to fix it. The
families (offerings, quotas, iam, weights, eks, bedrock) are plain functions of a `Context` that
return rows; none of them raises for an AWS answer it did not expect: an error from AWS becomes
an `error` row that names the call and its error code, so one missing permission never hides
the other checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from components.config import StackConfig

Status = Literal["pass", "warn", "fail", "error"]
"""`fail`: the deploy would fail or run without what the plan promised; `error`: the check could
not be made (AWS refused or broke the call), so nothing was verified. Both block (exit 1); `warn`
is worth reading but `pulumi up` succeeds."""

BLOCKING: frozenset[Status] = frozenset({"fail", "error"})

#: Three attempts in standard mode, short timeouts: a preflight must finish in seconds (the
#: example stacks: under 30 s), and a throttled or unreachable API becomes an `error` row.
#: https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html
CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"},
                       connect_timeout=5, read_timeout=15)


@dataclass(frozen=True)
class Check:
    """One row of the preflight table."""

    check: str
    status: Status
    detail: str
    fix: str = ""


class Clients:
    """boto3 clients for the stack's region, made once each and shared by the check threads.

    A boto3 `Session` is not thread-safe but its clients are, so clients are made under a lock.
    The session follows boto3's own resolution: `AWS_PROFILE`, environment credentials, SSO, and
    `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` for the endpoints (botocore >= 1.31).
    """

    def __init__(self, region: str, session: boto3.session.Session | None = None) -> None:
        self.region = region
        self._session = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, region_name=self.region, config=CLIENT_CONFIG)
            return self._clients[service]


@dataclass
class Context:
    """What the check families read: the parsed stack, its AZs and the AWS clients."""

    config: StackConfig
    clients: Clients
    account: str = ""
    partition: str = "aws"
    azs: tuple[str, ...] = field(default_factory=tuple)


def error_code(exc: Exception) -> str:
    """`AccessDeniedException` from a ClientError; the exception's class name otherwise."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def aws_error(check: str, call: str, exc: Exception, permission: str) -> Check:
    """The row for a call AWS refused or that never reached it: nothing was verified."""
    message = exc.response.get("Error", {}).get("Message", "") if isinstance(
        exc, ClientError) else str(exc)
    detail = f"{call} failed: {error_code(exc)}" + (f" ({message})" if message else "")
    return Check(check, "error", detail,
                 f"allow {permission} to the identity running preflight, then run it again")


AWS_ERRORS = (ClientError, BotoCoreError)
"""What a boto3 call raises for an AWS answer or a transport failure."""


def guarded(check: str, call: str, permission: str,
            body: Callable[[], Iterable[Check]]) -> list[Check]:
    """Run a check body; an AWS error becomes one `error` row for `check`."""
    try:
        return list(body())
    except AWS_ERRORS as exc:
        return [aws_error(check, call, exc, permission)]
