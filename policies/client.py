"""Drive the policy pack exactly as the Pulumi CLI does, over its gRPC analyzer protocol.

Used by `python -m policies.check` (the offline gate) and by the tests
(tests/policies/policy_harness.py re-exports it). Needs grpcio and jsonschema (the program's and
the test requirements), not only the pack's own requirements.

The CLI starts a Python pack as ``python -u -m pulumi.policy <engine-address> .`` in the pack's
folder with PULUMI_PROJECT/PULUMI_STACK/PULUMI_CONFIG/PULUMI_DRY_RUN set, reads the port from the
first stdout line, then calls GetAnalyzerInfo, Configure (per-policy enforcement + properties,
reconciled from the schema defaults and the `--policy-pack-config` file), Analyze per resource
with its inputs and AnalyzeStack with every resource's outputs. Secrets travel wrapped.

`reconcile` ports the CLI's config handling (pulumi sdk/go/common/resource/analyzer/config.go:
parsePolicyPackConfig, ReconcilePolicyPackConfig, validatePolicyConfig) so a config file the CLI
would reject fails here too. A fake Engine service stands at the engine address: pulumi-policy
1.21 never dials it, but if a future SDK logs through it the test sees the messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jsonschema
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from components.offline import Recorded

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies"
LEVELS = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
          "remediate": analyzer_pb2.REMEDIATE, "disabled": analyzer_pb2.DISABLED}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


class FakeEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self) -> None:
        self.logs: list[Any] = []

    def Log(self, request: Any, context: Any) -> Any:
        self.logs.append(request)
        return empty_pb2.Empty()


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    message: str
    urn: str

    @property
    def detail(self) -> str:
        """The rule's own message (the SDK prefixes the policy description and a newline)."""
        return self.message.split("\n", 1)[1] if "\n" in self.message else ""


@dataclass
class Launched:
    """A pack process that is starting; `connect` reads its port and does the handshake."""

    process: subprocess.Popen
    engine: FakeEngine
    engine_server: grpc.Server

    def connect(self) -> Analyzer:
        process = self.process
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            self.engine_server.stop(0)
            raise RuntimeError(f"policy pack did not print its port: {line!r}\n{err.decode()}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        analyzer = Analyzer(process, stub, channel, self.engine, self.engine_server)
        analyzer.info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        return analyzer


@dataclass
class Analyzer:
    process: subprocess.Popen
    stub: analyzer_pb2_grpc.AnalyzerStub
    channel: grpc.Channel
    engine: FakeEngine
    engine_server: grpc.Server
    info: Any = None
    configured: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def start(cls, stack: str = "dev", project: str = "llm-hosting") -> Analyzer:
        """Start the pack and complete the handshake (about 0.7 s, most of it imports)."""
        return cls.launch(stack, project).connect()

    @classmethod
    def launch(cls, stack: str = "dev", project: str = "llm-hosting") -> Launched:
        """Start the pack's process without waiting for it, so a caller can do other work (run
        the program) while the pack imports; `Launched.connect()` finishes the handshake."""
        engine = FakeEngine()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
        engine_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        env = {**os.environ, "PULUMI_PROJECT": project, "PULUMI_STACK": stack,
               "PULUMI_DRY_RUN": "true", "PULUMI_CONFIG": json.dumps({"aws:region": "us-east-1"})}
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", "."],
            cwd=PACK, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        return Launched(process, engine, server)

    def stop(self) -> None:
        self.channel.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.engine_server.stop(0)

    # -- configuration, as the CLI does it ---------------------------------------------------

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Per-policy JSON schema the CLI validates config against (enforcementLevel injected)."""
        out = {}
        for p in self.info.policies:
            props = json_format.MessageToDict(p.configSchema.properties)
            props["enforcementLevel"] = {"type": "string", "enum": list(LEVELS)}
            schema: dict[str, Any] = {"type": "object", "properties": props}
            if p.configSchema.required:
                schema["required"] = list(p.configSchema.required)
            out[p.name] = schema
        return out

    def reconcile(self, config_file: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
        """ReconcilePolicyPackConfig: schema defaults, then "all", then per-policy values.
        Raises ValueError listing every validation error, like the CLI refuses to run."""
        result: dict[str, tuple[str, dict[str, Any]]] = {}
        for p in self.info.policies:
            props = json_format.MessageToDict(p.configSchema.properties)
            defaults = {k: v["default"] for k, v in props.items() if "default" in v}
            result[p.name] = (LEVEL_NAMES[p.enforcementLevel], defaults)
        errors: list[str] = []
        parsed = parse_config_file(config_file, errors)
        if "all" in parsed and parsed["all"][0]:
            result = {k: (parsed["all"][0], v) for k, (_, v) in result.items()}
        for name, (level, props) in parsed.items():
            if name == "all":
                continue
            old_level, old_props = result.get(name, ("", {}))
            result[name] = (level or old_level, {**old_props, **props})
        schemas = self.schemas()
        for name, (_, props) in result.items():
            if name in schemas:  # an unknown policy name has no schema to hold it to
                validator = jsonschema.Draft7Validator(schemas[name])
                errors += [f"{name}: {e.message}" for e in validator.iter_errors(props)]
        if errors:
            raise ValueError("; ".join(errors))
        return result

    def configure(self, config_file: Mapping[str, Any]) -> None:
        reconciled = self.reconcile(config_file)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in reconciled.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = LEVELS[level]
            entry.properties.update(props)
        self.stub.Configure(request)
        self.configured = reconciled

    # -- analysis ------------------------------------------------------------------------------

    def analyze(self, resources: Iterable[Recorded], graph: Iterable[Recorded] = ()
                ) -> list[Diagnostic]:
        providers = {r.urn: r for r in graph if r.type.startswith("pulumi:providers:")}
        out: list[Diagnostic] = []
        for r in resources:
            request = analyzer_pb2.AnalyzeRequest(
                type=r.type, urn=r.urn, name=r.name, properties=_struct(r.inputs),
                options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent),
            )
            provider = providers.get(r.provider.split("::")[0] if r.provider else "")
            if provider is not None:
                request.provider.CopyFrom(analyzer_pb2.AnalyzerProviderResource(
                    type=provider.type, urn=provider.urn, name=provider.name,
                    properties=_struct(provider.inputs)))
            out += _diagnostics(self.stub.Analyze(request), default_urn=r.urn)
        return out

    def analyze_stack(self, resources: Iterable[Recorded]) -> list[Diagnostic]:
        request = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, urn=r.urn, name=r.name, parent=r.parent,
                # AnalyzeStack sees each resource's outputs (the engine's final state).
                properties=_struct(r.outputs or r.inputs),
                options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect, parent=r.parent),
                dependencies=list(r.dependencies),
                propertyDependencies={
                    k: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(v))
                    for k, v in r.property_dependencies.items()},
            )
            for r in resources
        ])
        return _diagnostics(self.stub.AnalyzeStack(request), default_urn="")


def parse_config_file(config: Mapping[str, Any], errors: list[str]
                      ) -> dict[str, tuple[str, dict[str, Any]]]:
    """parsePolicyPackConfig: a value is an enforcement level or an object of properties."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, value in config.items():
        if isinstance(value, str):
            if value not in LEVELS:
                errors.append(f"parsing enforcement level for {name!r}: {value!r} is not valid")
                continue
            out[name] = (value, {})
        elif isinstance(value, dict):
            props = dict(value)
            level = props.pop("enforcementLevel", "")
            if level and level not in LEVELS:
                errors.append(f"parsing enforcement level for {name!r}: {level!r} is not valid")
                continue
            out[name] = (level, props)
        else:
            errors.append(f"parsing {name!r}: must be a string or object")
    return out


_SIG = "4dabf18193072939515e22adb298388d"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"


def downgrade_references(value: Any) -> Any:
    """The engine marshals analyzer properties without KeepResources, so a resource reference
    arrives as the resource's id (custom resources) or URN (components), never as a reference
    (pulumi sdk/go/common/resource/plugin/rpc.go, MarshalPropertyValue)."""
    if isinstance(value, dict):
        if value.get(_SIG) == _RESOURCE_SIG:
            return value.get("id") or value.get("urn", "")
        return {k: downgrade_references(v) for k, v in value.items()}
    if isinstance(value, list):
        return [downgrade_references(v) for v in value]
    return value


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(downgrade_references(json.loads(json.dumps(value))), struct)
    return struct


def _diagnostics(response: Any, default_urn: str) -> list[Diagnostic]:
    return [Diagnostic(d.policyName, LEVEL_NAMES[d.enforcementLevel], d.message,
                       d.urn or default_urn) for d in response.diagnostics]
