"""Read a ConstraintTemplate: which kind it defines and which Rego the offline engine runs.

Only Rego v1 (`code[].source` with `version: "v1"`) is evaluated. rego-cpp implements Rego v1
alone: a v0 partial-set rule `p[x] { ... }` parses, but as a v1 partial object, so iterating
`p[_]` yields `true` instead of the elements and a v0 template would report nothing. Such
templates are refused instead of being evaluated wrongly. When a template carries both CEL
(K8sNativeValidation) and Rego, the Rego is evaluated, as `gator verify
--enable-k8s-native-validation=false` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import regopy

from polgen.engines.base import EngineError

TARGET = "admission.k8s.gatekeeper.sh"
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class TemplateCode:
    """The parts of a ConstraintTemplate the offline engine needs."""

    kind: str
    source: str
    rego: str
    libs: tuple[str, ...]


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


def _v0_error(source: str, kind: str, where: str) -> EngineError:
    return EngineError(
        source,
        f"{kind}: Rego v0 ({where}) is not supported by the offline Gatekeeper engine: rego-cpp "
        f"{regopy.__version__} implements Rego v1 only and reads v0 partial-set rules "
        "`p[x] { ... }` as partial objects, which would evaluate silently wrong; give the code as "
        'code[].source with version: "v1"',
    )


def parse_template(source: str, document: dict[str, Any]) -> TemplateCode:
    """The kind and v1 Rego of a ConstraintTemplate, or EngineError saying why not."""
    kind = _kind(source, document)
    target = _target(source, kind, document)
    if target.get("rego"):
        raise _v0_error(source, kind, "legacy spec.targets[].rego")
    code = target.get("code") or []
    if not isinstance(code, list):
        raise EngineError(source, f"{kind}: spec.targets[0].code must be a list")
    engines = [_mapping(entry).get("engine") for entry in code]
    rego_entries = [_mapping(entry) for entry in code if _mapping(entry).get("engine") == "Rego"]
    if not rego_entries:
        if "K8sNativeValidation" in engines:
            raise EngineError(source, f"{kind}: CEL-only ConstraintTemplate not supported by the "
                              "offline Gatekeeper engine")
        raise EngineError(source, f"{kind}: no Rego code (spec.targets[0].code has no Rego entry)")
    if len(rego_entries) > 1:
        raise EngineError(source, f"{kind}: more than one Rego entry in spec.targets[0].code")
    rego_source = _mapping(rego_entries[0].get("source"))
    if rego_source.get("version") != "v1":
        raise _v0_error(source, kind, "code[].source without version: v1")
    rego = rego_source.get("rego")
    libs = rego_source.get("libs") or []
    if not isinstance(rego, str) or not rego.strip():
        raise EngineError(source, f"{kind}: code[].source.rego must be non-empty Rego text")
    if not isinstance(libs, list) or not all(isinstance(lib, str) for lib in libs):
        raise EngineError(source, f"{kind}: code[].source.libs must be a list of Rego texts")
    return TemplateCode(kind, source, rego, tuple(libs))
