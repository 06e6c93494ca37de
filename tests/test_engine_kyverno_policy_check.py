"""Load-time rejection (kyverno_policy_check): each file in unsupported/ raises EngineError."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polgen.engines.base import EngineError
from polgen.engines.kyverno import ENGINE

UNSUPPORTED = sorted(
    (Path(__file__).parent / "data" / "kyverno_engine" / "unsupported").glob("*.yaml")
)
EXPECTED_REASON = {
    "api-call-context": "needs a cluster",
    "cel-does-not-compile": "spec.validations[0].expression",
    "cel-params": "paramKind/paramRef",
    "manifests": "validate.manifests is not supported",
    "pattern-reference": "$(...)",
    "pattern-reference-in-key": "$(...)",
    "pss-unknown-control": "control 'Everything'",
    "two-bodies": "more than one of pattern, deny",
    "unknown-operator": "unknown condition operator 'Contains'",
    "verify-images": "verifyImages",
}


def test_every_unsupported_file_has_an_expected_reason() -> None:
    assert sorted(p.stem for p in UNSUPPORTED) == sorted(EXPECTED_REASON)


@pytest.mark.parametrize("path", UNSUPPORTED, ids=[p.stem for p in UNSUPPORTED])
def test_unsupported_policy_is_rejected(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    with pytest.raises(EngineError) as raised:
        ENGINE.load([(str(path), document)])
    assert raised.value.source == str(path)
    assert EXPECTED_REASON[path.stem] in raised.value.reason


def test_mutate_and_generate_rules_are_ignored() -> None:
    document = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "m"},
        "spec": {
            "rules": [
                {
                    "name": "add",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"x": "y"}}}},
                },
            ]
        },
    }
    assert len(ENGINE.load([("m.yaml", document)]).policies) == 1


def test_only_kyverno_v1_policies_are_accepted() -> None:
    assert ENGINE.accepts({"apiVersion": "kyverno.io/v1", "kind": "Policy"})
    assert not ENGINE.accepts({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy"})
    assert not ENGINE.accepts({"apiVersion": "kyverno.io/v2", "kind": "PolicyException"})
