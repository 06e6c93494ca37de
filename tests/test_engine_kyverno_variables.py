"""`$(...)` and `{{ }}` substitution (kyverno_variables): typed, spliced, nested, escaped, map
keys, DELETE rewrite. Rows marked vars.go follow pkg/engine/variables/vars.go line by line."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.kyverno_variables import SubstitutionError, substitute, substitute_text

CONTEXT: dict[str, Any] = {
    "request": {
        "operation": "CREATE",
        "object": {"metadata": {"name": "web"}, "spec": {"replicas": 3, "ports": [80, 443]}},
        "oldObject": {"metadata": {"name": "old-web"}},
    },
    "pointer": "{{ request.object.metadata.name }}",
    "empty": "",
    "five": 5,
    "ratio": 1.0,
    "markup": ["<b>", "a&b"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ request.object.spec.replicas }}", 3),  # whole string: typed
        ("{{request.object.spec.ports}}", [80, 443]),
        ("n={{ request.object.spec.replicas }}", "n=3"),  # spliced as text
        ("ports {{ request.object.spec.ports }}", "ports [80,443]"),  # non-strings as JSON
        ("{{ request.object.metadata.name }}-{{ request.operation }}", "web-CREATE"),
        ("x-{{ pointer }}", "x-web"),  # a spliced value is scanned again...
        ("{{ pointer }}", "{{ request.object.metadata.name }}"),  # ...a whole one is not (vars.go)
        ("{{ request.object.metadata.{{ empty }}name }}", "web"),  # the inner variable first
        ("{{ empty }}{{ five }}", 5),  # the second is found next round, then whole: typed
        ("r={{ ratio }}", "r=1"),  # spliced as Go's JSON: float64 1.0 is `1`
        ("m={{ markup }}", 'm=["\\u003cb\\u003e","a\\u0026b"]'),  # Go's JSON escapes <, >, &
        (
            "\\{{ request.operation }}",
            "{{ request.operation }}",
        ),  # escaped: kept, backslash dropped
        ("\\$(./name)", "$(./name)"),  # an escaped reference: backslash dropped (vars.go)
        ("cost \\$(x) for {{ request.operation }}", "cost $(x) for CREATE"),
        ("\\$(a) \\$(a)", "$(a) $(a)"),
        ("plain text", "plain text"),
        ("{{ request.missing || 'x' }}", "x"),
    ],
)
def test_substitute_text(text: str, expected: Any) -> None:
    assert substitute_text(text, CONTEXT) == expected


def test_delete_reads_the_old_object() -> None:
    assert (
        substitute_text("{{ request.object.metadata.name }}", CONTEXT, deleting=True) == "old-web"
    )


def test_walks_maps_lists_and_keys() -> None:
    value = {"{{ request.operation }}": ["{{ request.operation }}", 1], "\\$(k)": "\\{{ v }}"}
    assert substitute(value, CONTEXT) == {"CREATE": ["CREATE", 1], "$(k)": "{{ v }}"}


@pytest.mark.parametrize(
    "value",
    [
        "{{ request.object.spec.missing }}",
        "{{ @ }}",
        "{{ time_now() }}",
        "$(./../limits/memory)",  # an unescaped reference: polgen does not resolve them
        "a $(b)",
        {"{{ five }}": "a key must stay a string"},
    ],
)
def test_unresolvable_is_an_error(value: Any) -> None:
    with pytest.raises(SubstitutionError):
        substitute(value, CONTEXT)
