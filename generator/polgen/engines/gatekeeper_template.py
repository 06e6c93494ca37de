"""Read a ConstraintTemplate: which kind it defines and the code each engine would run.

A template may carry K8sNativeValidation (CEL) and Rego. The Rego is the legacy
`spec.targets[].rego` field (always Rego v0, with `spec.targets[].libs`) or a `code[]` entry with
`engine: Rego`; when both are given the legacy field wins, as in Gatekeeper. A `code[]` Rego entry
is v1 only with `source.version: "v1"`, anything else is v0. Which engine runs is decided when the
template is compiled (`GatekeeperEngine(native_validation=...)`), so code the chosen engine does not
run is never refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from polgen.engines.base import EngineError

TARGET = "admission.k8s.gatekeeper.sh"
REGO = "Rego"
NATIVE_VALIDATION = "K8sNativeValidation"
LEGACY_FIELD = "legacy spec.targets[].rego"
CODE_FIELD = "code[].source"
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class RegoCode:
    """A template's Rego module and libraries, the Rego version they are written in, and where."""

    rego: str
    libs: tuple[str, ...]
    version: Literal["v0", "v1"]
    field: str


@dataclass(frozen=True)
class TemplateCode:
    """The parts of a ConstraintTemplate the offline engine needs: at least one of rego / cel."""

    kind: str
    source: str
    rego: RegoCode | None
    cel: Mapping[str, Any] | None
    """The `source` of the K8sNativeValidation entry."""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _kind(source: str, document: dict[str, Any]) -> str:
    spec = _mapping(document.get("spec"))
    names = _mapping(_mapping(_mapping(spec.get("crd")).get("spec")).get("names"))
    kind = names.get("kind")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise EngineError(source, "ConstraintTemplate needs spec.crd.spec.names.kind, a kind name "
                          f"such as K8sRequiredLabels (got {kind!r})")
    name = _mapping(document.get("metadata")).get("name")
    if name != kind.lower():
        raise EngineError(source, f"ConstraintTemplate name {name!r} must be the lowercase of its "
                          f"kind ({kind.lower()!r})")
    return kind


def _target(source: str, kind: str, document: dict[str, Any]) -> dict[str, Any]:
    targets = _mapping(document.get("spec")).get("targets")
    if not isinstance(targets, list) or len(targets) != 1 or not isinstance(targets[0], dict):
        raise EngineError(source, f"{kind}: spec.targets must hold exactly one target")
    target: dict[str, Any] = targets[0]
    if target.get("target") != TARGET:
        raise EngineError(source, f"{kind}: unknown target {target.get('target')!r} "
                          f"(expected {TARGET})")
    return target


def _single(source: str, kind: str, code: list[Any], engine: str) -> dict[str, Any] | None:
    entries = [_mapping(entry) for entry in code if _mapping(entry).get("engine") == engine]
    if len(entries) > 1:
        raise EngineError(source, f"{kind}: more than one {engine} entry in spec.targets[0].code")
    return entries[0] if entries else None


def _rego_text(
    source: str, kind: str, where: str, rego: Any, libs: Any
) -> tuple[str, tuple[str, ...]]:
    if not isinstance(rego, str) or not rego.strip():
        raise EngineError(source, f"{kind}: {where}.rego must be non-empty Rego text")
    libs = libs or []
    if not isinstance(libs, list) or not all(isinstance(lib, str) for lib in libs):
        raise EngineError(source, f"{kind}: {where}.libs must be a list of Rego texts")
    return rego, tuple(libs)


def _rego(source: str, kind: str, target: dict[str, Any], code: list[Any]) -> RegoCode | None:
    if target.get("rego"):
        rego, libs = _rego_text(source, kind, "spec.targets[0]", target["rego"], target.get("libs"))
        return RegoCode(rego, libs, "v0", LEGACY_FIELD)
    entry = _single(source, kind, code, REGO)
    if entry is None:
        return None
    rego_source = _mapping(entry.get("source"))
    rego, libs = _rego_text(source, kind, "code[].source", rego_source.get("rego"),
                            rego_source.get("libs"))
    version: Literal["v0", "v1"] = "v1" if rego_source.get("version") == "v1" else "v0"
    field = CODE_FIELD if version == "v1" else f'{CODE_FIELD} without version "v1"'
    return RegoCode(rego, libs, version, field)


def parse_template(source: str, document: dict[str, Any]) -> TemplateCode:
    """The kind, Rego and CEL of a ConstraintTemplate, or EngineError saying why not."""
    kind = _kind(source, document)
    target = _target(source, kind, document)
    code = target.get("code") or []
    if not isinstance(code, list):
        raise EngineError(source, f"{kind}: spec.targets[0].code must be a list")
    rego = _rego(source, kind, target, code)
    native = _single(source, kind, code, NATIVE_VALIDATION)
    cel = None
    if native is not None:
        cel = native.get("source")
        if not isinstance(cel, dict):
            raise EngineError(source, f"{kind}: the {NATIVE_VALIDATION} entry needs a source "
                              "mapping (variables, validations, ...)")
    if rego is None and cel is None:
        raise EngineError(source, f"{kind}: no code (neither spec.targets[0].rego nor a Rego or "
                          f"{NATIVE_VALIDATION} entry in spec.targets[0].code)")
    return TemplateCode(kind, source, rego, cel)
