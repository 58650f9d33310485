"""The analyzer-protocol client (policies/client.py) reads config files as the Pulumi CLI does
(pulumi sdk/go/common/resource/analyzer/config.go) and sends references as the engine does."""

from __future__ import annotations

import pytest
from policy_harness import Analyzer, Diagnostic, downgrade_references, parse_config_file

from components.offline import Recorded

SIG = "4dabf18193072939515e22adb298388d"
REF = "5cf8f73096256a8f31e491e813e4eb8e"


def test_config_file_values_are_levels_or_objects():
    errors: list[str] = []
    parsed = parse_config_file({
        "all": "mandatory", "a": "disabled", "b": {"enforcementLevel": "advisory", "x": 1},
        "c": {"y": 2}, "d": "loud", "e": {"enforcementLevel": "loud"}, "f": 3,
    }, errors)
    assert parsed == {"all": ("mandatory", {}), "a": ("disabled", {}),
                      "b": ("advisory", {"x": 1}), "c": ("", {"y": 2})}
    assert errors == ["parsing enforcement level for 'd': 'loud' is not valid",
                      "parsing enforcement level for 'e': 'loud' is not valid",
                      "parsing 'f': must be a string or object"]


def test_references_reach_the_analyzer_as_ids_or_urns():
    value = {"a": [{SIG: REF, "urn": "urn:x", "id": "i-1"}, {SIG: REF, "urn": "urn:c"}],
             "b": {"c": {SIG: REF, "urn": "urn:d", "id": ""}}, "s": "plain"}
    assert downgrade_references(value) == {"a": ["i-1", "urn:c"], "b": {"c": "urn:d"},
                                           "s": "plain"}


def test_the_message_detail_drops_the_description_line():
    assert Diagnostic("p", "advisory", "Description.\nthe detail", "").detail == "the detail"
    assert Diagnostic("p", "advisory", "no newline", "").detail == ""


@pytest.fixture(scope="module")
def pack():
    analyzer = Analyzer.start(stack="prod")
    yield analyzer
    analyzer.stop()


def test_reconcile_all_then_per_policy_then_schema(pack):
    reconciled = pack.reconcile({"all": "mandatory", "cost-ceiling": {"maxHourlyUsd": 7},
                                 "required-tags": "disabled"})
    assert reconciled["cost-ceiling"] == ("mandatory", {"maxHourlyUsd": 7})
    assert reconciled["required-tags"][0] == "disabled"
    assert reconciled["imdsv2-required"] == ("mandatory", {"maxHopLimit": 2})
    default = pack.reconcile({})
    assert {level for level, _ in default.values()} == {"advisory"}
    with pytest.raises(ValueError, match=r"imdsv2-required: 0 is less than the minimum of 1"):
        pack.reconcile({"imdsv2-required": {"maxHopLimit": 0}})
    with pytest.raises(ValueError, match="parsing 'x': must be a string or object"):
        pack.reconcile({"x": 1})


def test_the_provider_of_a_resource_travels_with_it(pack):
    provider = Recorded(type="pulumi:providers:aws", name="aws", inputs={"region": "us-east-1"},
                        urn="urn:pulumi:prod::p::pulumi:providers:aws::aws")
    lt = Recorded(type="aws:ec2/launchTemplate:LaunchTemplate", name="lt", inputs={},
                  urn="urn:pulumi:prod::p::aws:ec2/launchTemplate:LaunchTemplate::lt",
                  provider=f"{provider.urn}::id-1")
    pack.configure({"all": "advisory"})
    found = pack.analyze([lt], [provider, lt])
    assert {d.urn for d in found} == {lt.urn}
    assert "imdsv2-required" in {d.policy for d in found}


def test_an_unknown_policy_name_does_not_stop_validation(pack):
    """A config entry for a policy the pack does not have is ignored; values of the pack's own
    policies are still held to their schemas, whatever the order."""
    with pytest.raises(ValueError, match=r"^cost-ceiling: .lots. is not of type .number.$"):
        pack.reconcile({"no-such-policy": {"x": 1}, "cost-ceiling": {"maxHourlyUsd": "lots"}})
    assert "no-such-policy" in pack.reconcile({"no-such-policy": "advisory"})
