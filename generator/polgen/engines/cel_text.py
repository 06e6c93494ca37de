"""The text of CEL source: where its string literals and comments are, which policy variables it
reads, and the same source with those variables' definitions substituted (`compose_variables`).

Pure functions on strings; rewriting never touches a literal or a comment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache, partial

from polgen.engines.cel_runtime import CelCompileError

_MAX_COMPOSED_CHARS = 200_000
# A comment, or a string literal's optional r/b prefix and opening quote (not inside a name).
_LITERAL_START = re.compile(r"""//[^\n]*|(?<!\w)(?i:[rb]{1,2})?('''|\"\"\"|'|")""")
_VARIABLE_REF = re.compile(r"\bvariables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_PRESENCE_OF_VARIABLE = re.compile(r"\bhas\s*\(\s*variables\s*\.\s*[A-Za-z_][A-Za-z0-9_]*\s*\)")
_ESCAPED_UNTIL = {quote: re.compile(r"(?s)(?:[^\\]|\\.)*?" + quote)
                  for quote in ("'''", '"""', "'", '"')}
# Code that can put an optional or a uint where the static type says dyn: plain_value() cannot
# carry those back (and crashes on an optional inside a map), so such values are checked one by one.
_HIDDEN_VALUES = re.compile(r"[.\[]\s*\?|\boptional\b|\buint\b|\b(?:0x[0-9a-fA-F]+|\d+)[uU]\b")


@lru_cache(maxsize=8192)
def variable_references(expression: str) -> tuple[str, ...]:
    """The names of the variables an expression reads (`variables.<name>` outside literals and
    comments, not a field of something else), in order of first appearance."""
    names: dict[str, None] = {}
    for code, _ in _split_literals(expression):
        for match in _VARIABLE_REF.finditer(code):
            if not _is_member_access(code, match.start()):
                names.setdefault(match.group(1))
    return tuple(names)


def compose_variables(expression: str, definitions: Mapping[str, str],
                      keep: Collection[str] = ()) -> str:
    """`expression` with every `variables.<name>` replaced by that (already composed) definition.

    `definitions` maps a variable name to its composed expression; a reference to a name that is
    not defined (in Kubernetes: not defined *earlier*) is a compile error, unless it is one to
    `keep` as it is.
    """
    if not definitions and len(expression) <= _MAX_COMPOSED_CHARS and all(
        name in keep for name in variable_references(expression)
    ):
        return expression
    pieces: list[str] = []
    substitute = partial(_definition, definitions=definitions, keep=keep)
    for code, literal in _split_literals(expression):
        pieces.append(_VARIABLE_REF.sub(partial(substitute, code=code), code))
        pieces.append(literal)
    composed = "".join(pieces)
    if len(composed) > _MAX_COMPOSED_CHARS:
        raise CelCompileError(expression, "variables nest too deeply to compose offline")
    return composed


@lru_cache(maxsize=8192)
def tests_presence_of_variable(expression: str) -> bool:
    """Whether the code applies `has()` to a variable itself (`has(variables.x)`)."""
    return any(_PRESENCE_OF_VARIABLE.search(code) for code, _ in _split_literals(expression))


@lru_cache(maxsize=8192)
def may_hide_values(expression: str) -> bool:
    """Whether the code (not its literals) can make an optional or uint value."""
    return any(_HIDDEN_VALUES.search(code) for code, _ in _split_literals(expression))


def _definition(match: re.Match[str], code: str, definitions: Mapping[str, str],
                keep: Collection[str]) -> str:
    name = match.group(1)
    if _is_member_access(code, match.start()) or (name in keep and name not in definitions):
        return match.group(0)
    if name not in definitions:
        raise CelCompileError(code, f"undefined variable {name!r} (variables.{name})")
    return f"({definitions[name]}\n)"  # the newline ends a trailing `//` comment


def _is_member_access(code: str, start: int) -> bool:
    """`x.variables.y` selects a field named `variables`; it is not the variables object."""
    return code[:start].rstrip().endswith(".")


@lru_cache(maxsize=8192)
def _split_literals(expression: str) -> tuple[tuple[str, str], ...]:
    """(code, following string literal or comment) pairs, so rewriting never touches literals."""
    parts: list[tuple[str, str]] = []
    position = 0
    while (found := _LITERAL_START.search(expression, position)) is not None:
        end = _literal_end(expression, found) if found.group(1) else found.end()
        parts.append((expression[position:found.start()], expression[found.start():end]))
        position = end
    parts.append((expression[position:], ""))
    return tuple(parts)


def _literal_end(expression: str, match: re.Match[str]) -> int:
    """Where a literal ends: after its closing quote (a backslash escapes the next character
    unless the literal is raw), or at the end of an unterminated one."""
    quote = match.group(1)
    if "r" in match.group(0)[: match.start(1) - match.start()].lower():
        end = expression.find(quote, match.end())
        return len(expression) if end < 0 else end + len(quote)
    closed = _ESCAPED_UNTIL[quote].match(expression, match.end())
    return closed.end() if closed else len(expression)
