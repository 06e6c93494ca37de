"""validate.cel (kyverno_cel): statuses and messages on the shared CEL runtime."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.kyverno_cel import activation, compile_rule, evaluate
from polgen.engines.kyverno_context import KyvernoRequest

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"hostIPC": True, "containers": [{"name": "c", "image": "nginx"}]},
}


def outcome(
    cel: dict[str, Any], preconditions: list[dict[str, Any]] | None = None, message: str = ""
) -> tuple[str, str]:
    rule = {"name": "r", "validate": {"cel": cel}, "celPreconditions": preconditions or []}
    data = activation(KyvernoRequest.from_manifest(POD), None)
    result = evaluate(compile_rule("p.yaml", "r", rule), data, message)
    return result.status, result.message


@pytest.mark.parametrize(
    ("cel", "preconditions", "message", "expected"),
    [
        (
            {"expressions": [{"expression": "!object.spec.hostIPC", "message": "no ipc"}]},
            None,
            "",
            ("fail", "no ipc"),
        ),
        (
            {
                "expressions": [
                    {
                        "expression": "!object.spec.hostIPC",
                        "messageExpression": "'ipc on ' + object.metadata.name",
                    }
                ]
            },
            None,
            "",
            ("fail", "ipc on p"),
        ),
        (
            {"expressions": [{"expression": "!object.spec.hostIPC"}]},
            None,
            "rule message",
            ("fail", "rule message"),
        ),
        (
            {"expressions": [{"expression": "!object.spec.hostIPC"}]},
            None,
            "",
            ("fail", "failed expression: !object.spec.hostIPC"),
        ),
        (
            {
                "variables": [{"name": "n", "expression": "size(object.spec.containers)"}],
                "expressions": [{"expression": "variables.n == 1"}],
            },
            None,
            "",
            ("pass", ""),
        ),
        ({"expressions": [{"expression": "object.spec.hostPID"}]}, None, "", ("error", None)),
        (
            {"expressions": [{"expression": "false"}]},
            [{"name": "only-create", "expression": "request.operation == 'UPDATE'"}],
            "",
            ("skip", None),
        ),
        (
            {
                "expressions": [
                    {"expression": "request.operation == 'CREATE' && namespaceObject == null"}
                ]
            },
            None,
            "",
            ("pass", ""),
        ),
    ],
)
def test_cel(
    cel: dict[str, Any],
    preconditions: list[dict[str, Any]] | None,
    message: str,
    expected: tuple[str, str | None],
) -> None:
    status, text = outcome(cel, preconditions, message)
    assert status == expected[0]
    if expected[1] is not None:
        assert text == expected[1]
