"""Run the Pulumi program offline and record the resource graph it registers.

Used by the `plan` command (what would `pulumi up` create?) and by the tests. The recorder
answers like AWS would for the few outputs the program reads (ids, ARNs, subnet lists), records
every resource's type, name, inputs, parent and provider, and every invoke, so a test asks
questions of the graph instead of the mock. Two pitfalls of the SDK's stock mocks are handled
here (see ../shared/TESTING.md): resource references in inputs are replaced by their URN before
the stock monitor deserializes them on another event loop, and `Call` (component methods) is
forwarded to the mocks.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: `__main__.py` and the `Pulumi.<stack>.yaml` files live here."""
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ACCOUNT = "123456789012"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""
    parent: str = ""
    provider: str = ""
    custom: bool = True
    protect: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    resources: list[Recorded]
    invokes: list[tuple[str, dict[str, Any]]]
    exports: dict[str, Any]

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_} {name or ''}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, parent: Recorded) -> list[Recorded]:
        return [r for r in self.resources if r.parent == parent.urn]


def unwrap(value: Any) -> Any:
    """A recorded input with secrets unwrapped (only for asserting on content)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _vpc_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    azs = int(inputs.get("numberOfAvailabilityZones", 2))
    return {
        "vpcId": "vpc-0mock",
        "privateSubnetIds": [f"subnet-private-{i}" for i in range(azs)],
        "publicSubnetIds": [f"subnet-public-{i}" for i in range(azs)],
        "isolatedSubnetIds": [],
    }


OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    # Remote components are opaque offline: answer with the outputs the program reads.
    "awsx:ec2:Vpc": _vpc_outputs,
}
"""Outputs AWS computes that the program reads back, per resource type (custom resources also
echo their inputs). One entry per type; platforms add theirs here."""

INVOKES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda _: {
        "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDMOCK",
        "id": ACCOUNT,
    },
    "aws:index/getPartition:getPartition": lambda _: {
        "partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
    },
    "aws:index/getRegion:getRegion": lambda _: {
        "name": "us-east-1", "region": "us-east-1", "id": "us-east-1",
    },
    "aws:ec2/getRouteTables:getRouteTables": lambda _: {
        "ids": ["rtb-public", "rtb-private-0", "rtb-private-1"], "id": "vpc",
    },
}
"""Invoke answers by token; platforms add theirs here."""


class RecordingMocks(pmocks.Mocks):
    """Answers like AWS for what the program reads back; echoes inputs of custom resources."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str, dict]:
        rid = f"{args.name}-id"
        outputs: dict[str, Any] = dict(args.inputs) if args.custom else {}
        outputs.update(self._outputs_for(args.typ, args.name, args.inputs))
        if args.custom:
            outputs.setdefault("arn", f"arn:aws:mock:us-east-1:{ACCOUNT}:{args.name}")
        return rid, outputs

    def _outputs_for(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        answer = OUTPUTS.get(typ)
        return answer(name, inputs) if answer else {}

    def call(self, args: pmocks.MockCallArgs) -> dict:
        self.invokes.append((args.token, dict(args.args)))
        answer = INVOKES.get(args.token)
        return answer(dict(args.args)) if answer else {}


def _strip_resource_refs(value: struct_pb2.Value) -> None:
    """Replace serialized resource references by their URN, in place."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        sig = fields.get(rpc._special_sig_key)
        if sig is not None and sig.string_value == _RESOURCE_SIG:
            value.string_value = fields["urn"].string_value
            return
        for v in fields.values():
            _strip_resource_refs(v)
    elif kind == "list_value":
        for v in value.list_value.values:
            _strip_resource_refs(v)


class RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks

    def RegisterResource(self, request: Any) -> Any:
        for v in request.object.fields.values():
            _strip_resource_refs(v)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            state = self.resources.get(response.urn)
            self.recorder.resources.append(
                Recorded(
                    type=request.type,
                    name=request.name,
                    inputs=_plain(inputs),
                    urn=response.urn,
                    parent=request.parent,
                    provider=request.provider,
                    custom=request.custom,
                    protect=request.protect,
                    outputs=_plain(state.state) if state else {},
                )
            )
        return response

    def Call(self, request: Any) -> Any:
        args = rpc.deserialize_properties(request.args)
        ret = self.recorder.call(pmocks.MockCallArgs(request.tok, args, request.provider))
        ret_proto = pmocks._sync_await(rpc.serialize_properties(ret, {}))
        return resource_pb2.CallResponse(**{"return": ret_proto})


def _plain(value: Any) -> Any:
    """Deserialized inputs keep secrets wrapped the way the engine sends them."""
    return json.loads(json.dumps(value, default=str))


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "dev",
    secret_keys: tuple[str, ...] = (),
    program: Path | Callable[[], object] = ROOT / "__main__.py",
    mocks: RecordingMocks | None = None,
) -> Graph:
    """Run `__main__.py` offline with `config` (`llm-hosting:<key>` -> value) and record it.

    Structured values may be given as Python objects; they are JSON-encoded like the engine does.
    `program` is the stack's `__main__.py` or a callable that registers one component.
    Raises whatever the program raises (e.g. `ConfigError`) before any resource registers.
    """
    mocks = mocks or RecordingMocks()
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project="llm-hosting", stack=stack, preview=False, monitor=monitor
    )
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        list(secret_keys),
    )
    loop = asyncio.get_event_loop()
    if callable(program):
        program()
    else:
        runpy.run_path(str(program), run_name="__main__")
    loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
    root = settings.get_root_resource()
    exports = {}
    if root is not None:
        for key, value in getattr(root, "outputs", {}).items():
            exports[key] = loop.run_until_complete(_resolve(value))
    return Graph(resources=mocks.resources, invokes=mocks.invokes, exports=exports)


async def _resolve(value: Any) -> Any:
    out = pulumi.Output.from_input(value)
    return await out.future()
