"""IAM: identity policies grant no `*` on `*` and no `NotAction`; trust policies are scoped.

Four rules over every IAM document a stack writes, in pulumi-aws (`policy` and
`assumeRolePolicy` as JSON strings, `inlinePolicies`) and aws-native (`policyDocument` and
`assumeRolePolicyDocument` as objects, `policies`), plus attachments of AWS-managed policies
that are themselves such grants:

- `iam-policy-no-star-on-star`: no Allow statement whose actions match every action (`*`,
  `*:*`) on every resource (`*`, or `NotResource`, which allows everything but a list).
- `iam-policy-no-notaction-allow`: no Allow with `NotAction` (it allows every action but a list,
  including actions AWS adds later).
- `iam-role-trust-scoped`: a role is not assumable by everyone (`*`), by a whole account (its
  root or bare id, unless listed in `trustedAccountIds`) or by an identity provider's every
  user, unless a condition pins the caller.
- `iam-role-trust-confused-deputy`: a role an AWS service assumes carries `aws:SourceAccount` or
  `aws:SourceArn` (or the org keys), so the service cannot be made to assume it on behalf of
  another account's resource.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html#cross-service-confused-deputy-prevention

Grammar (element names and value shapes) as in the IAM JSON policy reference:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from policies.rules._framework import (
    Malformed,
    Resource,
    Rule,
    get,
    is_list,
    is_map,
    items_at,
    json_at,
    path_of,
)

# ------------------------------------------------------------------------------------------
# where documents live

#: type -> (property holding one document, how to find it); `None` marks a list of
#: {name, document} entries (inline policies on a role/user/group).
IDENTITY_DOCUMENTS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "aws:iam/policy:Policy": (("policy",),),
    "aws:iam/rolePolicy:RolePolicy": (("policy",),),
    "aws:iam/userPolicy:UserPolicy": (("policy",),),
    "aws:iam/groupPolicy:GroupPolicy": (("policy",),),
    "aws:iam/role:Role": (("inlinePolicies", "*", "policy"),),
    "aws-native:iam:ManagedPolicy": (("policyDocument",),),
    "aws-native:iam:RolePolicy": (("policyDocument",),),
    "aws-native:iam:UserPolicy": (("policyDocument",),),
    "aws-native:iam:GroupPolicy": (("policyDocument",),),
    "aws-native:iam:Role": (("policies", "*", "policyDocument"),),
    "aws-native:iam:User": (("policies", "*", "policyDocument"),),
    "aws-native:iam:Group": (("policies", "*", "policyDocument"),),
}
"""Identity-based policy documents, by type: (path, with `*` for every list element)."""

#: type -> properties naming managed policy ARNs (one ARN or a list of them).
ATTACHMENTS: Mapping[str, tuple[str, ...]] = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn",),
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": ("policyArn",),
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": ("policyArn",),
    "aws:iam/policyAttachment:PolicyAttachment": ("policyArn",),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("policyArns",),
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": ("policyArns",),
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": ("policyArns",),
    "aws:iam/role:Role": ("managedPolicyArns",),
    "aws-native:iam:Role": ("managedPolicyArns",),
    "aws-native:iam:User": ("managedPolicyArns",),
    "aws-native:iam:Group": ("managedPolicyArns",),
}

TRUST_DOCUMENTS: Mapping[str, str] = {
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws-native:iam:Role": "assumeRolePolicyDocument",
}

#: AWS-managed policies that are themselves the grants these rules refuse (their documents:
#: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AdministratorAccess.html,
#: .../PowerUserAccess.html). Matched on the policy path after `:policy/`, any partition.
MANAGED_STAR_ON_STAR = frozenset({"AdministratorAccess"})
MANAGED_NOT_ACTION = frozenset({"PowerUserAccess"})

_MANAGED = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?([^/]+)$")


# ------------------------------------------------------------------------------------------
# document walking


def _listish(value: Any, where: str) -> list[Any]:
    """An element that may be one value or a list of them (Action, Resource, principal ids)."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    if isinstance(value, str):
        return [value]
    raise Malformed(path_of(value, where), value, "a string or a list of strings")


def _strings(value: Any, where: str) -> list[str]:
    out = []
    for v in _listish(value, where):
        if not isinstance(v, str):
            raise Malformed(where, v, "a string")
        out.append(v)
    return out


def documents(resource: Resource, paths: tuple[tuple[str, ...], ...]
              ) -> Iterator[tuple[str, Any]]:
    """(where, document) for every document at `paths` (`*` walks a list)."""
    for path in paths:
        yield from _walk(resource.props, path, "")


def _walk(node: Any, path: tuple[str, ...], where: str) -> Iterator[tuple[str, Any]]:
    head, rest = path[0], path[1:]
    if head == "*":
        for i, element in enumerate(items_at(node)):
            yield from _walk(element, rest, f"{where}[{i}]")
        return
    here = f"{where}.{head}" if where else head
    if rest:
        child = get(node, head)
        if child is not None:
            yield from _walk(child, rest, here)
        return
    document = json_at(node, head)
    if document is not None:
        yield here, document


def statements(where: str, document: Any) -> Iterator[tuple[str, Any]]:
    """(label, statement) for each statement; the label names the Sid when there is one."""
    if not is_map(document):
        raise Malformed(where, document, "a policy document (an object with Statement)")
    raw = get(document, "Statement")
    if raw is None:
        return
    entries = [raw] if is_map(raw) else list(_listish(raw, f"{where}.Statement"))
    for i, statement in enumerate(entries):
        if not is_map(statement):
            raise Malformed(f"{where}.Statement[{i}]", statement, "a statement object")
        sid = get(statement, "Sid")
        label = f"{where} Statement[{i}]" + (f" ({sid})" if isinstance(sid, str) and sid else "")
        yield label, statement


def effect(statement: Any, label: str) -> str:
    value = get(statement, "Effect")
    if value not in ("Allow", "Deny"):
        raise Malformed(f"{label}.Effect", value, "Allow or Deny")
    return str(value)


def matches_every_action(pattern: str) -> bool:
    """`*`, `*:*`, `**`...: a pattern that matches every action of every service."""
    return "*" in pattern and not pattern.replace(":", "").replace("*", "")


# ------------------------------------------------------------------------------------------
# iam-policy-no-star-on-star and iam-policy-no-notaction-allow


def _identity_statements(resource: Resource) -> Iterator[tuple[str, Any]]:
    for where, document in documents(resource, IDENTITY_DOCUMENTS.get(resource.type, ())):
        for label, statement in statements(where, document):
            if effect(statement, label) == "Allow":
                yield label, statement


def _managed_arns(resource: Resource) -> Iterator[tuple[str, str]]:
    for prop in ATTACHMENTS.get(resource.type, ()):
        for i, arn in enumerate(_strings(get(resource.props, prop), prop)):
            match = _MANAGED.match(arn)
            if match:
                yield (prop if prop == "policyArn" else f"{prop}[{i}]"), match.group(1)


def check_star_on_star(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for label, statement in _identity_statements(resource):
        actions = _strings(get(statement, "Action"), f"{label}.Action")
        every = [a for a in actions if matches_every_action(a)]
        if not every:
            continue
        resources = _strings(get(statement, "Resource"), f"{label}.Resource")
        if "*" in resources or get(statement, "NotResource") is not None:
            on = "*" if "*" in resources else "NotResource (every other resource)"
            yield (f"{label} allows every action ({every[0]}) on {on}; grant the actions the "
                   "workload calls on its own resources")
    for where, name in _managed_arns(resource):
        if name in MANAGED_STAR_ON_STAR:
            yield (f"{where} attaches the AWS-managed {name}, which allows * on *; attach a "
                   "policy with the actions the workload calls")


def check_not_action(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    for label, statement in _identity_statements(resource):
        not_action = get(statement, "NotAction")
        if not_action is not None:
            excluded = ", ".join(_strings(not_action, f"{label}.NotAction")) or "nothing"
            yield (f"{label} allows every action except {excluded} (NotAction), including "
                   "actions AWS adds later; list the allowed actions instead")
    for where, name in _managed_arns(resource):
        if name in MANAGED_NOT_ACTION:
            yield (f"{where} attaches the AWS-managed {name}, an Allow with NotAction; attach a "
                   "policy with the actions the workload calls")


_IDENTITY_TYPES = tuple(sorted(set(IDENTITY_DOCUMENTS) | set(ATTACHMENTS)))

IAM_POLICY_NO_STAR_ON_STAR = Rule(
    name="iam-policy-no-star-on-star",
    description="No identity policy or attached managed policy allows every action on every "
                "resource.",
    checks=dict.fromkeys(_IDENTITY_TYPES, check_star_on_star),
)

IAM_POLICY_NO_NOTACTION_ALLOW = Rule(
    name="iam-policy-no-notaction-allow",
    description="No identity policy or attached managed policy allows actions through NotAction.",
    checks=dict.fromkeys(_IDENTITY_TYPES, check_not_action),
)


# ------------------------------------------------------------------------------------------
# trust policies


def _trust_statements(resource: Resource) -> Iterator[tuple[str, Any]]:
    prop = TRUST_DOCUMENTS[resource.type]
    document = json_at(resource.props, prop)
    if document is None:
        return
    for label, statement in statements(prop, document):
        if effect(statement, label) != "Allow":
            continue
        actions = _strings(get(statement, "Action"), f"{label}.Action")
        if get(statement, "NotAction") is not None or any(
                a == "*" or a.lower().startswith("sts:") for a in actions):
            yield label, statement


def principals(statement: Any, label: str) -> dict[str, list[str]]:
    """Principal by kind (`*` for a bare wildcard): {"AWS": [...], "Service": [...], ...}."""
    if get(statement, "NotPrincipal") is not None:
        # Allow + NotPrincipal trusts everyone but a list: as open as "*".
        return {"*": ["*"]}
    principal = get(statement, "Principal")
    if principal is None:
        raise Malformed(f"{label}.Principal", principal, "a principal")
    if principal == "*":
        return {"*": ["*"]}
    if not is_map(principal):
        raise Malformed(f"{label}.Principal", principal, '"*" or an object of principals')
    return {str(kind): _strings(ids, f"{label}.Principal.{kind}")
            for kind, ids in principal.items()}


#: Condition operators that hold when the key is absent or that exclude rather than pin:
#: they cannot restrict who the caller is.
_WEAK_OPERATOR = re.compile(r"(Not|IfExists$|^Null$|^ForAllValues:)", re.IGNORECASE)


def pinning_keys(statement: Any, label: str) -> set[str]:
    """Lower-cased condition keys a statement pins with a positive, non-wildcard test."""
    condition = get(statement, "Condition")
    if condition is None:
        return set()
    if not is_map(condition):
        raise Malformed(f"{label}.Condition", condition, "an object of operators")
    keys: set[str] = set()
    for operator, tests in condition.items():
        if not is_map(tests):
            raise Malformed(f"{label}.Condition.{operator}", tests, "an object of keys")
        if _WEAK_OPERATOR.search(str(operator)):
            continue
        for key, values in tests.items():
            where = f"{label}.Condition.{operator}.{key}"
            listed = [str(v) for v in _listish(values, where)
                      if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
            if listed and not all(v.strip("*?") == "" for v in listed):
                keys.add(str(key).lower())
    return keys


_CALLER_KEYS = frozenset({"aws:principalarn", "aws:principalaccount", "aws:principalorgid",
                          "aws:principalorgpaths", "aws:sourceaccount", "aws:sourcearn",
                          "aws:sourceorgid", "aws:sourceorgpaths"})
"""Condition keys that pin *which* principal is calling (global condition keys:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html)."""

_ACCOUNT_KEYS = _CALLER_KEYS | {"sts:externalid"}
"""For trust to another account, an external id is AWS's documented third-party guard:
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html"""

_ACCOUNT = re.compile(r"^(?:(\d{12})|arn:aws[a-z-]*:iam::(\d{12}):root)$")


def check_trust_scoped(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    trusted = {str(a) for a in config["trustedAccountIds"]}
    for label, statement in _trust_statements(resource):
        found = principals(statement, label)
        pinned = pinning_keys(statement, label)
        if ("*" in found or "*" in found.get("AWS", [])) and not pinned & _CALLER_KEYS:
            yield (f"{label} lets any AWS principal (*) assume the role; name the principals, or "
                   "pin them with aws:PrincipalArn / aws:PrincipalOrgID")
        for principal in found.get("AWS", []):
            match = _ACCOUNT.match(principal)
            account = match and (match.group(1) or match.group(2))
            if account and account not in trusted and not pinned & _ACCOUNT_KEYS:
                yield (f"{label} trusts every principal of account {account} ({principal}) "
                       "without a condition; name the role, or add aws:PrincipalArn or "
                       "sts:ExternalId (or list the account in trustedAccountIds)")
        for provider in found.get("Federated", []):
            if not _federation_pinned(provider, pinned):
                yield (f"{label} trusts every identity of {provider}; condition it on the "
                       "token's subject (<provider>:sub, or SAML:aud / cognito "
                       "...:aud for those providers)")


def _federation_pinned(provider: str, pinned: set[str]) -> bool:
    """OIDC: a `<issuer>:sub` condition (an audience alone is shared, e.g. every GitHub repo
    gets `sts.amazonaws.com`); SAML: SAML:aud; Cognito identity pools: their `:aud` (the pool).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html"""
    if "saml-provider/" in provider:
        return bool(pinned & {"saml:aud", "saml:sub"})
    if provider == "cognito-identity.amazonaws.com":
        return "cognito-identity.amazonaws.com:aud" in pinned
    return any(k.endswith(":sub") for k in pinned)


_SOURCE_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid",
                          "aws:sourceorgpaths"})


def check_confused_deputy(resource: Resource, config: Mapping[str, Any]) -> Iterable[str]:
    exempt = {str(s) for s in config["exemptServicePrincipals"]}
    for label, statement in _trust_statements(resource):
        services = [s for s in principals(statement, label).get("Service", [])
                    if s not in exempt]
        if services and not pinning_keys(statement, label) & _SOURCE_KEYS:
            yield (f"{label} lets {', '.join(services)} assume the role for any account's "
                   "resources; add aws:SourceAccount (and aws:SourceArn where the service "
                   "documents it) so it acts only for this account")


IAM_ROLE_TRUST_SCOPED = Rule(
    name="iam-role-trust-scoped",
    description="No role trusts everyone, a whole account or a whole identity provider without "
                "a condition that pins the caller.",
    checks=dict.fromkeys(TRUST_DOCUMENTS, check_trust_scoped),
    config={
        "trustedAccountIds": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^\d{12}$"},
            "default": [],
            "description": "accounts whose every principal may be trusted (e.g. this one)",
        },
    },
)

IAM_ROLE_TRUST_CONFUSED_DEPUTY = Rule(
    name="iam-role-trust-confused-deputy",
    description="Roles that AWS services assume are conditioned on aws:SourceAccount or "
                "aws:SourceArn.",
    checks=dict.fromkeys(TRUST_DOCUMENTS, check_confused_deputy),
    config={
        "exemptServicePrincipals": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            # EC2 does not set aws:SourceAccount/aws:SourceArn when it delivers an instance
            # profile's credentials, so a condition on them breaks every instance; AWS's own
            # instance-role trust policy has none
            # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-roles-for-amazon-ec2.html;
            # reported against scanners in prowler-cloud/prowler#2810).
            "default": ["ec2.amazonaws.com"],
            "description": "service principals that do not set aws:SourceAccount/SourceArn",
        },
    },
)

RULES = [IAM_POLICY_NO_STAR_ON_STAR, IAM_POLICY_NO_NOTACTION_ALLOW, IAM_ROLE_TRUST_SCOPED,
         IAM_ROLE_TRUST_CONFUSED_DEPUTY]
