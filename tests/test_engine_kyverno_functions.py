"""Kyverno's custom JMESPath functions (kyverno_functions), called through the fork."""

from __future__ import annotations

from typing import Any

import pytest

from polgen.engines.kyverno_jmespath import JMESPathError, query

CALLS: list[tuple[str, Any]] = [
    ("regex_match('^nginx:[0-9.]+$', 'nginx:1.27')", True),
    ("regex_match('^[0-9]+$', `8080`)", True),
    ("regex_match('^[0-9]+$', `1000000`)", True),  # numbers print as float32 'f': 1000000
    ("regex_match('^0.3$', `0.3`)", True),
    ("regex_match('^16777216$', `16777217`)", True),  # float32 precision, like Go
    ("regex_match('^nginx:[0-9.]+$', 'nginx:1.27\n')", False),  # RE2 `$`: end of text only
    ("regex_match('^\\w+$', '\u00e9t\u00e9')", False),  # RE2 `\w` is ASCII
    ("regex_match('\\d', '\u0663')", False),  # ...and `\d` too
    ("regex_match('^a{,2}$', 'a{,2}')", True),  # `{,2}` is literal text in RE2
    ("regex_replace_all('x*', 'abxd', '-')", "-a-b-d-"),  # no empty match next to a match
    ("regex_replace_all('(?U)a+', 'aaa', 'X')", "XXX"),  # RE2's ungreedy flag
    ("regex_replace_all('a(b)', 'ab', '$1x')", ""),  # `$1x` names group "1x": empty
    ("regex_replace_all('a(b)', 'ab', '${1}x')", "bx"),
    ("regex_replace_all('a', 'a', '$$')", "$"),
    ("regex_replace_all_literal('(a)', 'a', '$1')", "$1"),
    ("pattern_match('1000000', `1000000`)", True),
    ("pattern_match('*.example', 'a.example')", True),
    ("split('a,b,c', ',')", ["a", "b", "c"]),
    ("to_upper('abc')", "ABC"),
    ("to_lower('ABC')", "abc"),
    ("trim('--a--', '-')", "a"),
    ("trim_prefix('docker.io/nginx', 'docker.io/')", "nginx"),
    ("replace_all('a.b.c', '.', '-')", "a-b-c"),
    ("replace('aaa', 'a', 'b', `2`)", "bba"),
    ("regex_replace_all('([a-z]+)-([0-9]+)', 'app-12', '$2-$1')", "12-app"),
    ("regex_replace_all_literal('[0-9]', 'a1b2', 'X')", "aXbX"),
    ("equal_fold('Go', 'GO')", True),
    ("compare('a', 'b')", -1),
    ('label_match(`{"app": "web"}`, `{"app": "web", "tier": "x"}`)', True),
    ('label_match(`{"app": "db"}`, `{"app": "web"}`)', False),
    ('label_match(`{"on": 1}`, `{"on": true}`)', False),  # Go compares typed values
    ('object_from_lists(`[1, true]`, `["a", "b"]`)', {"1": "a", "true": "b"}),
    ("image_normalize('nginx')", "docker.io/library/nginx:latest"),
    ("image_normalize('ghcr.io/org/app:1.2')", "ghcr.io/org/app:1.2"),
    ("truncate('kyverno', `3`)", "kyv"),
    ("semver_compare('1.2.3', '>1.0.0 <2.0.0')", True),
    ("semver_compare('2.1.0', '>1.0.0 <2.0.0 || 2.x')", True),
    ("semver_compare('0.9.0', '>=1.0.0')", False),
    ("parse_json('{\"a\": [1]}').a", [1]),
    ("parse_yaml('a: b')", {"a": "b"}),
    ("base64_encode('hi')", "aGk="),
    ("base64_decode('aGk=')", "hi"),
    ("add(`1`, `2`)", 3),
    ("subtract(`5`, `2`)", 3),
    ("multiply(`3`, `2`)", 6),
    ("divide(`6`, `4`)", 1.5),
    ("to_boolean('True')", True),
    ("items(`{\"b\": 1, \"a\": 2}`, 'k', 'v')", [{"k": "a", "v": 2}, {"k": "b", "v": 1}]),
    ('object_from_lists(`["a"]`, `[1]`)', {"a": 1}),
    ("lookup(`{\"a\": 1}`, 'a')", 1),
    ("sha256('')", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("path_canonicalize('/a/./b/../c')", "/a/c"),
]


@pytest.mark.parametrize(("expression", "expected"), CALLS)
def test_function(expression: str, expected: Any) -> None:
    assert query(expression, {}) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "base64_decode('***')",
        "to_boolean('yes')",
        "add('1Gi', '1Gi')",
        "parse_json('{')",
        "semver_compare('v1', '>1.0.0')",
        "modulo(`1`, `0`)",
        "regex_match('(a)\\1', 'aa')",  # RE2 has no backreferences...
        "regex_match('(?=a)', 'a')",  # ...no lookarounds...
        "regex_match('(?<!a)b', 'b')",
        "regex_match('a++', 'a')",  # ...no possessive quantifiers
        "regex_match('\\pL', 'a')",  # RE2 accepts, polgen does not translate: error, not a guess
        "regex_replace_all('[', 'a', 'b')",
        'label_match(`{"a": {}}`, `{"a": {}}`)',  # Go cannot compare two maps
        "object_from_lists(`[null]`, `[1]`)",
    ],
)
def test_function_errors(expression: str) -> None:
    with pytest.raises(JMESPathError):
        query(expression, {})
