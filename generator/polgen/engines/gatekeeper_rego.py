"""Gatekeeper's Rego rules for template code, and one compiled rego-cpp bundle per template.

Gatekeeper rewrites a template's package to `data.template`, keeps its libraries under
`data.lib.*`, rejects other `data` references and imports (including `import rego.v1`) and
requires a `violation` rule. For each matched Constraint it evaluates
`data.template.violation[r]` with `input.parameters` set to the Constraint's `spec.parameters`.

rego-cpp cannot take `with input as <variable>` (it fails or crashes), but it can replace
`input.parameters`. So one review's input is `{"review": ..., "parameters": {<template kind>:
[parameters of each matched Constraint]}}`, set once, and a generated hook rule per template
evaluates `violation` once per listed parameters object, `with input.parameters as` it: the
template itself sees exactly Gatekeeper's input. The bundle therefore depends only on the
template's code, so equal templates of several clusters compile once. Bundles live in the Rego
worker processes (`gatekeeper_rego_worker`); a review is one query per matched template, all in
one round trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from polgen.engines.base import EngineError
from polgen.engines.gatekeeper_rego_process import WorkerError, worker
from polgen.rendering import to_json

TEMPLATE_PACKAGE = "template"
HOOK_PACKAGE = "polgen_gatekeeper_hook"
HOOK_RULE = "results"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+(\S+)", re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\s#]+)", re.MULTILINE)
_DATA_REF = re.compile(r"(?<![.\w])data\b(\s*\.\s*([A-Za-z_]\w*)|\s*\[)?")
_VIOLATION_RULE = re.compile(r"^[ \t]*violation\b[ \t]*(contains\b|if\b|\[|\{|:=|=)", re.MULTILINE)
_ERROR_MESSAGE = re.compile(r"\(errormsg \d+:([^\n]*)\)")
_ERROR_LOCATION = re.compile(r"\(error \d+:([^|\n]*)\|(\d+)\|")
TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|\"|`|[{}\[\]()]|:=|[^\s\w]")
"""Rego tokens, enough to follow brackets in a masked module."""
_BODY_KEYWORDS = frozenset({"if", "else", "contains", "some", "every", "not", "in", "with", "as"})


_MASKED = re.compile(r'#[^\n]*|"(?P<quoted>(?:[^"\\]|\\.?)*)(?P<quote>"?)'
                     r"|`(?P<raw>[^`]*)(?P<backtick>`?)", re.DOTALL)


def _blank(found: re.Match[str]) -> str:
    text = found.group(0)
    if text[0] == "#":
        return " " * len(text)
    body = found.group("quoted") if text[0] == '"' else found.group("raw")
    closing = found.group("quote") or found.group("backtick") or ""
    return text[0] + re.sub(r"[^\n]", " ", body) + closing


@lru_cache(maxsize=512)
def mask(source: str) -> str:
    """The source with comments and string contents blanked, offsets and newlines unchanged.

    Structural checks then never mistake `data.x` or `{` inside a string or comment for code.
    """
    return _MASKED.sub(_blank, source)


def line_of(text: str, offset: int) -> int:
    """The 1-based line of an offset, for messages."""
    return text.count("\n", 0, offset) + 1


class _Problem(Exception):
    """A Gatekeeper rule the module breaks, at a line of the module."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _check_imports(masked: str) -> None:
    for found in _IMPORT.finditer(masked):
        path = found.group(1)
        line = line_of(masked, found.start())
        if path == "rego.v1":
            raise _Problem(line, 'invalid import: bad import: "rego.v1" (Gatekeeper rejects it; '
                           "v1 syntax needs no import)")
        allowed = (
            path == "future" or path.startswith("future.")
            or path == "data.lib" or path.startswith(("data.lib.", "data.lib["))
            or path.startswith("data.inventory")  # refused with the reference itself below
        )
        if not allowed:
            raise _Problem(line, f"invalid import {path!r}: Gatekeeper allows only data.lib.*, "
                           "data.inventory and future.* imports")


def _check_data_refs(masked: str) -> None:
    for found in _DATA_REF.finditer(masked):
        line = line_of(masked, found.start())
        head = found.group(2)
        if head == "inventory":
            raise _Problem(line, "references data.inventory (a referential policy); the offline "
                           "engine has no synced cluster state for it")
        if head != "lib":
            raise _Problem(line, "invalid data reference: Gatekeeper templates may only read "
                           "data.lib.* (and data.inventory)")


@lru_cache(maxsize=512)
def body_without_if(masked: str) -> int | None:
    """The offset of the first rule body not opened by `if` (v0 syntax that OPA v1 refuses and
    rego-cpp misreads), or None. `masked` is the module after `mask`."""
    depth = 0
    previous = ""
    for found in TOKEN.finditer(masked):
        token = found.group(0)
        if token == "{" and depth == 0:
            after_value = previous in {"]", ")", '"', "`"} or previous.isdigit() or (
                bool(_IDENT.fullmatch(previous)) and previous not in _BODY_KEYWORDS
            )
            if after_value:
                return found.start()
        if token in "{[(":
            depth += 1
        elif token in "}])":
            depth = max(0, depth - 1)
        previous = token
    return None


def _check_v1_rule_bodies(masked: str) -> None:
    offset = body_without_if(masked)
    if offset is not None:
        raise _Problem(line_of(masked, offset), "rule body without `if` is Rego v0 syntax; "
                       'source.version "v1" needs `if` (and `contains`)')


def _package(text: str, masked: str) -> tuple[str, tuple[int, int]]:
    found = _PACKAGE.search(masked)
    if found is None:
        raise _Problem(1, "Rego module has no package declaration")
    return text[found.start(1) : found.end(1)], found.span(1)


def _checked(source: str, part: str, text: str, library: bool) -> str:
    masked = mask(text)
    try:
        package, (start, end) = _package(text, masked)
        if library and package != "lib" and not package.startswith("lib."):
            raise _Problem(line_of(masked, start), f"library package {package!r} must be under lib "
                           "(Gatekeeper serves libraries as data.lib.*)")
        _check_imports(masked)
        _check_data_refs(masked)
        _check_v1_rule_bodies(masked)
    except _Problem as problem:
        raise EngineError(source, f"{part} line {problem.line}: {problem.message}") from problem
    if library:
        return text
    if not _VIOLATION_RULE.search(masked):
        raise EngineError(source, f"{part}: invalid rego: invalid module: missing required "
                          "rules: [violation]")
    return text[:start] + TEMPLATE_PACKAGE + text[end:]


def template_module(source: str, text: str) -> str:
    """The template's Rego with its package rewritten to `template`, after Gatekeeper's checks."""
    return _checked(source, "rego", text, library=False)


def lib_module(source: str, part: str, text: str) -> str:
    """A template library, checked like the template; its package must sit under `lib`."""
    return _checked(source, part, text, library=True)


def _rego_problem(text: str, modules: dict[str, str]) -> str:
    """rego-cpp reports an AST dump; keep the messages and the first location as a line number."""
    messages = list(dict.fromkeys(m.strip() for m in _ERROR_MESSAGE.findall(text)))
    found = _ERROR_LOCATION.search(text)
    location = ""
    if found and found.group(1) in modules:
        line = line_of(modules[found.group(1)], int(found.group(2)))
        location = f"{found.group(1)} line {line}: "
    summary = "; ".join(messages) or (text.splitlines() or ["unknown rego-cpp error"])[0]
    return location + summary


@dataclass(frozen=True)
class CompiledTemplate:
    """One ConstraintTemplate's bundle in the Rego workers; its hook entry point evaluates the
    template for every parameters object the input lists under the template's kind."""

    kind: str
    source: str
    bundle: int

    def query(self) -> tuple[int, str]:
        """The worker query of the hook."""
        return self.bundle, f"{HOOK_PACKAGE}/{HOOK_RULE}"

    def violations(self, answer: list[Any], count: int) -> list[list[Any]]:
        """Every result of `violation` for each of the `count` parameters objects, in order, from
        the worker's answer to `query`."""
        status, value = answer
        if status == "invalid":  # regopy parses the output as JSON; an error term is not JSON
            raise EngineError(self.source, f"rego-cpp failed evaluating {self.kind}: {value}")
        if status != "ok":
            raise EngineError(self.source, f"rego-cpp failed evaluating {self.kind} (a built-in "
                              "raised an error or is not implemented by rego-cpp)")
        results: list[list[Any]] = [[] for _ in range(count)]
        for index, found in (value[0] if value else []):
            results[index] = list(found) if isinstance(found, list) else list(found or ())
        return results


@dataclass(frozen=True)
class PendingTemplate:
    """A template whose bundle the Rego workers are compiling."""

    kind: str
    source: str
    bundle: int
    modules: dict[str, str] = field(compare=False)

    def result(self) -> CompiledTemplate:
        """The compiled template, once the worker has it; EngineError if the Rego is refused."""
        try:
            worker().built(self.bundle)
        except WorkerError as exc:
            raise EngineError(self.source, f"{self.kind}: Rego does not compile: "
                              f"{_rego_problem(str(exc), self.modules)}") from exc
        return CompiledTemplate(self.kind, self.source, self.bundle)


def compile_template(kind: str, source: str, rego: str, libs: list[str]) -> PendingTemplate:
    """Check a template's Rego (v1) and start compiling it with its hook; `result()` gives the
    compiled template."""
    modules = {"rego": template_module(source, rego)}
    for number, lib in enumerate(libs):
        modules[f"libs[{number}]"] = lib_module(source, f"libs[{number}]", lib)
    modules["hook"] = (
        f"package {HOOK_PACKAGE}\n\n"
        f"{HOOK_RULE} := [[index, result] |\n"
        f"  listed := input.parameters[{to_json(kind)}]\n"
        "  some index\n"  # rego-cpp refuses `some index, parameters in listed`
        "  parameters := listed[index]\n"
        f"  result := {{r | data.{TEMPLATE_PACKAGE}.violation[r]}} "
        "with input.parameters as parameters\n"
        "]\n"
    )
    entrypoints = [f"{TEMPLATE_PACKAGE}/violation", f"{HOOK_PACKAGE}/{HOOK_RULE}"]
    try:
        bundle = worker().build(modules, entrypoints)
    except WorkerError as exc:
        raise EngineError(source, f"{kind}: Rego does not compile: "
                          f"{_rego_problem(str(exc), modules)}") from exc
    return PendingTemplate(kind, source, bundle, modules)
