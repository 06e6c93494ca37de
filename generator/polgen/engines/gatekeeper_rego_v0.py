"""Rego v0 that means the same in Rego v1: the legacy `rego` field and `code[]` Rego without
`version: "v1"`, evaluated by a Rego v1 interpreter.

rego-cpp implements Rego v1 only, and some v0 reads differently in v1 without any error: a v0
partial set `p[x] { ... }` (or `p[x] if { ... }`) is a v1 partial object whose values are `true`,
so `violation[r]` would yield `true` and report nothing. A v0 module already written in v1's form
means the same in both versions, and is accepted:

- every keyword it uses (`if`, `contains`, `in`, `every`) is imported from `future.keywords`, so
  OPA v0 parses it as the keyword v1 always has;
- every rule body is opened by `if`;
- no rule head is a bare `p[x]`: partial sets are written `p contains x`.

Its `future.keywords` imports are removed and it is evaluated as v1. Any other v0 module is
refused with the line and the reason.
"""

from __future__ import annotations

import re

import regopy

from polgen.engines.base import EngineError
from polgen.engines.gatekeeper_rego import TOKEN, body_without_if, line_of, mask

KEYWORDS = ("contains", "every", "if", "in")
_FUTURE_IMPORT = re.compile(r"^[ \t]*import[ \t]+future\.keywords(?:\.(\w+))?[ \t]*$", re.MULTILINE)
_IDENT = re.compile(r"[A-Za-z_]\w*")
_STATEMENTS = frozenset({"package", "import", "default", "else"})


class _NotV1Form(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def _imported(masked: str) -> set[str]:
    imported: set[str] = set()
    for found in _FUTURE_IMPORT.finditer(masked):
        imported.update([found.group(1)] if found.group(1) else KEYWORDS)
    return imported


def _check_keywords(tokens: list[re.Match[str]], imported: set[str]) -> None:
    for index, found in enumerate(tokens):
        word = found.group(0)
        if word not in KEYWORDS or word in imported:
            continue
        after_dot = index > 0 and tokens[index - 1].group(0) == "."
        builtin_call = word == "contains" and index + 1 < len(tokens) and (
            tokens[index + 1].group(0) == "(")
        if not (after_dot or builtin_call):
            raise _NotV1Form(found.start(), f"uses `{word}` without `import future.keywords."
                             f"{word}` (OPA v0 does not parse it as a keyword)")


def _starts_line(masked: str, offset: int) -> bool:
    return not masked[masked.rfind("\n", 0, offset) + 1 : offset].strip()


def _bare_partial_head(masked: str, tokens: list[re.Match[str]], start: int) -> bool:
    """Is the head starting at token `start` a ref with brackets and no value (`p[x] if`)?"""
    index, brackets = start + 1, 0
    while index < len(tokens):
        token = tokens[index].group(0)
        if token == "." and index + 1 < len(tokens):
            index += 2
        elif token == "[":
            depth = 0
            while index < len(tokens):
                depth += {"[": 1, "]": -1}.get(tokens[index].group(0), 0)
                index += 1
                if depth == 0:
                    break
            brackets += 1
        else:
            break
    if not brackets:
        return False
    if index == len(tokens):
        return True
    following = tokens[index]
    return following.group(0) in ("if", "{") or _starts_line(masked, following.start())


def _check_partial_sets(masked: str, tokens: list[re.Match[str]]) -> None:
    depth = 0
    for index, found in enumerate(tokens):
        token = found.group(0)
        if (depth == 0 and _IDENT.fullmatch(token) and token not in _STATEMENTS
                and _starts_line(masked, found.start())
                and _bare_partial_head(masked, tokens, index)):
            raise _NotV1Form(found.start(), f"`{token}[...]` without a value is a partial set in "
                             "Rego v0 but a partial object in v1; write it "
                             f"`{token} contains ...` (import future.keywords.contains)")
        if token in "{[(":
            depth += 1
        elif token in "}])":
            depth = max(0, depth - 1)


def _without_future_imports(text: str, masked: str) -> str:
    """The module with its `future.keywords` imports blanked (line numbers kept)."""
    pieces, position = [], 0
    for found in _FUTURE_IMPORT.finditer(masked):
        pieces.append(text[position : found.start()])
        position = found.end()
    return "".join(pieces) + text[position:]


def as_v1(source: str, kind: str, field: str, part: str, text: str) -> str:
    """The v0 module `part` of a template as the v1 module that means the same, or EngineError."""
    masked = mask(text)
    tokens = list(TOKEN.finditer(masked))
    try:
        _check_keywords(tokens, _imported(masked))
        offset = body_without_if(masked)
        if offset is not None:
            raise _NotV1Form(offset, "rule body without `if` (v0 syntax)")
        _check_partial_sets(masked, tokens)
    except _NotV1Form as problem:
        raise EngineError(
            source,
            f"{kind}: Rego v0 ({field}) {part} line {line_of(masked, problem.offset)}: "
            f"{problem.message}. rego-cpp {regopy.__version__} implements Rego v1 only, so the "
            "offline Gatekeeper engine evaluates v0 only when it is written in v1's form (keywords "
            "imported from future.keywords, every rule body opened by `if`, partial sets with "
            '`contains`); otherwise give the code as code[].source with version: "v1"',
        ) from problem
    return _without_future_imports(text, masked)
