"""`{{ }}` substitution (kyverno_variables): typed, spliced, nested, escaped, DELETE rewrite."""

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
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ request.object.spec.replicas }}", 3),  # whole string: typed
        ("{{request.object.spec.ports}}", [80, 443]),
        ("n={{ request.object.spec.replicas }}", "n=3"),  # spliced as text
        ("ports {{ request.object.spec.ports }}", "ports [80,443]"),  # non-strings as JSON
        ("{{ request.object.metadata.name }}-{{ request.operation }}", "web-CREATE"),
        ("{{ pointer }}", "web"),  # a variable yielding a variable
        (
            "\\{{ request.operation }}",
            "{{ request.operation }}",
        ),  # escaped: kept, backslash dropped
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


def test_walks_maps_and_lists_but_not_keys() -> None:
    value = {"{{ request.operation }}": ["{{ request.operation }}", 1]}
    assert substitute(value, CONTEXT) == {"{{ request.operation }}": ["CREATE", 1]}


@pytest.mark.parametrize(
    "text", ["{{ request.object.spec.missing }}", "{{ @ }}", "{{ time_now() }}"]
)
def test_unresolvable_is_an_error(text: str) -> None:
    with pytest.raises(SubstitutionError):
        substitute_text(text, CONTEXT)
