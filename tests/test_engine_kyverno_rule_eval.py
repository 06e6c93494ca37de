"""allowExistingViolations (kyverno_rule_eval): when a failing UPDATE is replayed and skipped."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_rule_eval import evaluate_rule

RULE = {"name": "host-pid", "validate": {"pattern": {"spec": {"=(hostPID)": "false"}}}}
BAD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostPID": True}}
GOOD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}


def update(old: dict[str, Any] | None, new: dict[str, Any]) -> KyvernoRequest:
    return replace(KyvernoRequest.from_manifest(new, operation="UPDATE"), old_object=old)


def always(_: KyvernoRequest) -> bool:
    return True


@pytest.mark.parametrize(
    ("rule", "request_", "enforce", "matches_old", "status"),
    [
        (RULE, update(BAD, BAD), True, always, "skip"),  # existing violation kept
        (RULE, update(GOOD, BAD), True, always, "fail"),  # a new violation fails
        (RULE, update(BAD, BAD), False, always, "fail"),  # Audit never replays
        (RULE, update(BAD, BAD), True, lambda _: False, "fail"),  # old object not matched
        (RULE, update(None, BAD), True, always, "fail"),  # no old object
        (
            {**RULE, "validate": {**RULE["validate"], "allowExistingViolations": False}},
            update(BAD, BAD),
            True,
            always,
            "fail",
        ),
        (RULE, KyvernoRequest.from_manifest(BAD), True, always, "fail"),  # CREATE
    ],
)
def test_existing_violations(
    rule: dict[str, Any], request_: KyvernoRequest, enforce: bool, matches_old: Any, status: str
) -> None:
    result = evaluate_rule(rule, request_, None, enforce=enforce, matches_old=matches_old)
    assert result is not None and result.status == status


def test_replay_is_a_create_of_the_old_object() -> None:
    seen: list[KyvernoRequest] = []

    def record(old: KyvernoRequest) -> bool:
        seen.append(old)
        return True

    evaluate_rule(RULE, update(BAD, BAD), None, enforce=True, matches_old=record)
    assert seen[0].operation == "CREATE" and seen[0].object == BAD and seen[0].old_object is None
