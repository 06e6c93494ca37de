"""Rule bodies (kyverno_rules): deny, pattern, anyPattern and foreach statuses and messages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_rules import RuleBody, RuleResult, load_context

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "redis"}]},
}


def run(
    validate: dict[str, Any],
    manifest: dict[str, Any] = POD,
    preconditions: Any = None,
    operation: str = "CREATE",
) -> RuleResult | None:
    request = KyvernoRequest.from_manifest(manifest, operation=operation)
    rule = {"name": "r", "validate": validate}
    return RuleBody(rule, request).run(validate, request.context(), preconditions)


@pytest.mark.parametrize(
    ("validate", "status", "message"),
    [
        ({"message": "m", "deny": {}}, "fail", "m"),
        ({"deny": {}}, "fail", "validation error: rule r failed"),
        (
            {
                "message": "has {{ request.object.metadata.name }}",
                "deny": {"conditions": {"any": [{"key": 1, "operator": "Equals", "value": 1}]}},
            },
            "fail",
            "has p",
        ),
        (
            {"deny": {"conditions": [{"key": 1, "operator": "Equals", "value": 2}]}},
            "pass",
            "validation rule 'r' passed.",
        ),
        (
            {"message": "tags", "pattern": {"spec": {"containers": [{"image": "*:*"}]}}},
            "fail",
            "validation error: tags. rule r failed at path /spec/containers/1/image/",
        ),
        (
            {"pattern": {"spec": {"containers": [{"image": "?*"}]}}},
            "pass",
            "validation rule 'r' passed.",
        ),
        (
            {
                "message": "m.",
                "anyPattern": [
                    {"spec": {"hostPID": True}},
                    {"spec": {"containers": [{"image": "*:*"}]}},
                ],
            },
            "fail",
            "validation error: m. rule r[0] failed at path /spec/hostPID/ "
            "rule r[1] failed at path /spec/containers/1/image/",
        ),
        (
            {
                "message": "{{ request.object.metadata.name }} \\{{ x }} \\$(y)",
                "anyPattern": [{"spec": {"hostPID": True}}],
            },
            "fail",
            "validation error: p {{ x }} $(y). rule r[0] failed at path /spec/hostPID/",
        ),
        (
            {"anyPattern": [{"spec": {"hostPID": True}}, {"metadata": {"name": "p"}}]},
            "pass",
            "validation rule 'r' anyPattern[1] passed.",
        ),
        (
            {"anyPattern": [{"spec": {"(hostPID)": True}}]},
            "skip",
            "rule r[0] skipped: conditional anchor key doesn't exist in the resource",
        ),
        ({"pattern": {"spec": {"replicas": "{{ request.object.spec.missing }}"}}}, "error", None),
    ],
)
def test_bodies(validate: dict[str, Any], status: str, message: str | None) -> None:
    result = run(validate)
    assert result is not None
    assert result.status == status
    if message is not None:
        assert result.message == message


def test_preconditions_skip_and_error() -> None:
    false = {"all": [{"key": "{{ request.operation }}", "operator": "Equals", "value": "UPDATE"}]}
    broken = {
        "all": [{"key": "{{ request.object.spec.missing }}", "operator": "Equals", "value": 1}]
    }
    skipped = run({"deny": {}}, preconditions=false)
    errored = run({"deny": {}}, preconditions=broken)
    assert skipped is not None and skipped.status == "skip"
    assert errored is not None and errored.status == "error"


def test_pattern_on_delete_has_no_result() -> None:
    request = KyvernoRequest.from_manifest(POD, operation="DELETE")
    deleting = replace(request, object=None, old_object=POD)
    body = {"pattern": {"spec": {"containers": [{"image": "*:*"}]}}}
    assert RuleBody({"name": "r"}, deleting).run(body, deleting.context(), None) is None


FOREACH_CASES: list[tuple[str, list[dict[str, Any]], str | None, str]] = [
    (
        "deny-on-an-element",
        [
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": [
                        {"key": "{{ element.image }}", "operator": "Equals", "value": "redis"}
                    ]
                },
            }
        ],
        "fail",
        "validation failure: m",
    ),
    (
        "pattern-scoped-to-the-element",
        [{"list": "request.object.spec.containers", "pattern": {"image": "*:*"}}],
        "fail",
        "validation failure: validation error: m. rule r failed at path /image/",
    ),
    (
        "unknown-key-list-skips-the-entry",
        [
            {"list": "request.object.spec.initContainers", "deny": {}},
            {"list": "request.object.spec.containers", "pattern": {"image": "?*"}},
        ],
        "pass",
        "rule passed",
    ),
    (
        "no-element-visited-no-result",
        [{"list": "request.object.spec.initContainers", "deny": {}}],
        None,
        "",
    ),
    (
        "error-in-a-non-last-element-vanishes",
        [
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": [
                        {"key": "{{ element.missing }}", "operator": "Equals", "value": 1}
                    ]
                },
                "preconditions": {
                    "all": [{"key": "{{ element.name }}", "operator": "Equals", "value": "a"}]
                },
            }
        ],
        None,
        "",
    ),
    (
        "error-in-a-non-last-element-then-a-pass",
        [
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": [
                        {
                            "key": "{{ element.missing || element.image }}",
                            "operator": "Equals",
                            "value": "nope",
                        }
                    ]
                },
            },
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": [
                        {"key": "{{ element.missing }}", "operator": "Equals", "value": 1}
                    ]
                },
                "preconditions": {
                    "all": [{"key": "{{ element.name }}", "operator": "Equals", "value": "a"}]
                },
            },
        ],
        "pass",
        "rule passed",
    ),
    (
        "error-in-the-last-element-is-reported",
        [
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": [
                        {"key": "{{ element.missing }}", "operator": "Equals", "value": 1}
                    ]
                },
            }
        ],
        "error",
        "validation failure: failed to check deny conditions: failed to resolve element.missing: "
        'Unknown key "missing" in path',
    ),
    (
        "element-index-is-set",
        [
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": [{"key": "{{ elementIndex0 }}", "operator": "Equals", "value": 1}]
                },
            }
        ],
        "fail",
        "validation failure: m",
    ),
    (
        "scalar-elements-are-not-scoped",
        [{"list": "request.object.spec.containers[].name", "pattern": {"metadata": {"name": "p"}}}],
        "pass",
        "rule passed",
    ),
]


@pytest.mark.parametrize(
    ("name", "foreach", "status", "message"), FOREACH_CASES, ids=[c[0] for c in FOREACH_CASES]
)
def test_foreach(
    name: str, foreach: list[dict[str, Any]], status: str | None, message: str
) -> None:
    result = run({"message": "m", "foreach": foreach})
    if status is None:
        assert result is None
        return
    assert result is not None
    assert (result.status, result.message) == (status, message)


def test_variable_context_entries() -> None:
    context: dict[str, Any] = {"request": {"object": {"spec": {"n": 2}}}}
    load_context(
        [
            {"name": "n", "variable": {"jmesPath": "request.object.spec.n"}},
            {"name": "lit", "variable": {"value": {"a": "{{ n }}"}}},
            {"name": "dflt", "variable": {"jmesPath": "request.object.spec.x", "default": 7}},
        ],
        context,
        deleting=False,
    )
    assert (context["n"], context["lit"], context["dflt"]) == (2, {"a": 2}, 7)
