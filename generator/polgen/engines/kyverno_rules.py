"""The deny / pattern / anyPattern / foreach bodies of a validate rule (and of foreach entries).

Pipeline (pkg/engine/handlers/validation/validate_resource.go): context entries, preconditions
(false → skip, error → error), then the body. A body with nothing to say (a foreach that visited
no element, a pattern on a DELETE) returns None: Kyverno then reports no result at all.
podSecurity and cel bodies are dispatched by `kyverno_rule_eval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from polgen.engines.kyverno_conditions import evaluate_conditions
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_jmespath import JMESPathError, query
from polgen.engines.kyverno_pattern import match_pattern
from polgen.engines.kyverno_variables import SubstitutionError, substitute

Status = Literal["pass", "fail", "skip", "error"]


@dataclass(frozen=True)
class RuleResult:
    """Kyverno's rule response: the (possibly autogen) rule name, status and message."""

    rule: str
    status: Status
    message: str


def load_context(entries: list[dict[str, Any]], context: dict[str, Any], deleting: bool) -> None:
    """`context` entries of type `variable` (the only kind that needs no cluster)."""
    for entry in entries:
        variable = entry.get("variable") or {}
        name = str(entry["name"])
        try:
            value = substitute(variable.get("value"), context, deleting)
            if variable.get("jmesPath"):
                path = substitute(str(variable["jmesPath"]), context, deleting)
                value = query(str(path), value if "value" in variable else context)
        except (JMESPathError, SubstitutionError):
            if "default" not in variable:
                raise
            value = None
        if value is None and "default" in variable:
            value = substitute(variable["default"], context, deleting)
        context[name] = value


class RuleBody:
    """Evaluates deny / pattern / anyPattern / foreach bodies of one rule (and nested foreach)."""

    def __init__(self, rule: dict[str, Any], request: KyvernoRequest) -> None:
        self.name = str(rule.get("name", ""))
        self.message = str((rule.get("validate") or {}).get("message") or "")
        self.request = request

    def run(
        self,
        body: dict[str, Any],
        context: dict[str, Any],
        preconditions: Any,
        nesting: int = 0,
        element: Any = None,
    ) -> RuleResult | None:
        deleting = self.request.deleting
        try:
            load_context(body.get("context") or [], context, deleting)
        except (JMESPathError, SubstitutionError) as exc:
            return RuleResult(self.name, "error", f"failed to load context: {exc}")
        if preconditions is not None:
            try:
                outcome = evaluate_conditions(preconditions, context, deleting)
            except SubstitutionError as exc:
                return RuleResult(self.name, "error", f"failed to evaluate preconditions: {exc}")
            if not outcome.holds:
                detail = "; ".join(("preconditions not met", *outcome.messages))
                return RuleResult(self.name, "skip", detail)
        if "deny" in body:
            return self._deny(body.get("deny") or {}, context)
        if body.get("pattern") is not None or body.get("anyPattern") is not None:
            return self._patterns(body, context, element)
        if body.get("foreach"):
            return self._foreach(body["foreach"], context, nesting)
        return None

    def _deny(self, deny: dict[str, Any], context: dict[str, Any]) -> RuleResult:
        try:
            outcome = evaluate_conditions(
                deny.get("conditions") or {}, context, self.request.deleting
            )
        except SubstitutionError as exc:
            return RuleResult(self.name, "error", f"failed to check deny conditions: {exc}")
        if not outcome.holds:
            return RuleResult(self.name, "pass", f"validation rule '{self.name}' passed.")
        text = "; ".join(part for part in (self.message, *outcome.messages) if part)
        if not text:
            return RuleResult(self.name, "fail", f"validation error: rule {self.name} failed")
        return RuleResult(self.name, "fail", self._substituted(text, context))

    def _substituted(self, text: str, context: dict[str, Any]) -> str:
        try:
            resolved = substitute(text, context, self.request.deleting)
        except SubstitutionError:
            return text
        if not isinstance(resolved, str):
            return "the produced message didn't resolve to a string, check your policy definition."
        return resolved

    def _patterns(
        self, body: dict[str, Any], context: dict[str, Any], element: Any
    ) -> RuleResult | None:
        key = "pattern" if body.get("pattern") is not None else "anyPattern"
        try:
            patterns = substitute(body[key], context, self.request.deleting)
        except SubstitutionError as exc:
            return RuleResult(self.name, "error", f"variable substitution failed: {exc}")
        if element is None and self.request.deleting:
            return None
        resource = element if element is not None else self.request.resource
        if key == "pattern":
            return self._pattern(resource, patterns, context)
        return self._any_pattern(resource, patterns, context)

    def _pattern(self, resource: Any, pattern: Any, context: dict[str, Any]) -> RuleResult:
        outcome = match_pattern(resource, pattern)
        if outcome.status == "pass":
            return RuleResult(self.name, "pass", f"validation rule '{self.name}' passed.")
        if outcome.status == "skip":
            return RuleResult(self.name, "skip", outcome.message)
        return RuleResult(
            self.name, outcome.status, self._pattern_message(outcome.path, outcome.message, context)
        )

    def _pattern_message(self, path: str, error: str, context: dict[str, Any]) -> str:
        where = f"failed at path {path}" if path else f"execution error: {error}"
        if not self.message:
            return f"validation error: rule {self.name} {where}"
        try:
            message = substitute(self.message, context, self.request.deleting)
        except SubstitutionError:
            return (
                "validation error: variables substitution error in rule "
                f"{self.name} execution error: {error}"
            )
        text = str(message)
        text = text if text.endswith(".") else text + "."
        return f"validation error: {text} rule {self.name} {where}"

    def _any_pattern(self, resource: Any, patterns: Any, context: dict[str, Any]) -> RuleResult:
        if not isinstance(patterns, list):
            return RuleResult(
                self.name, "error", "failed to deserialize anyPattern, expected type array"
            )
        failed: list[str] = []
        skipped: list[str] = []
        for index, pattern in enumerate(patterns):
            outcome = match_pattern(resource, pattern)
            if outcome.status == "pass":
                return RuleResult(
                    self.name, "pass", f"validation rule '{self.name}' anyPattern[{index}] passed."
                )
            if outcome.status == "skip":
                skipped.append(f"rule {self.name}[{index}] skipped: {outcome.message}")
            elif outcome.path:
                failed.append(f"rule {self.name}[{index}] failed at path {outcome.path}")
            else:
                failed.append(f"rule {self.name}[{index}] failed: {outcome.message}")
        if skipped and not failed:
            return RuleResult(self.name, "skip", " ".join(skipped))
        detail = " ".join(failed)
        if not self.message:
            return RuleResult(self.name, "fail", f"validation error: {detail}")
        try:
            message = str(substitute(self.message, context, self.request.deleting))
        except SubstitutionError:
            return RuleResult(
                self.name,
                "fail",
                "validation error: variables substitution error in rule "
                f"{self.name} execution error: {detail}",
            )
        separator = " " if message.endswith(".") else ". "
        return RuleResult(self.name, "fail", f"validation error: {message}{separator}{detail}")

    def _foreach(
        self, entries: list[dict[str, Any]], context: dict[str, Any], nesting: int
    ) -> RuleResult | None:
        applied = 0
        for entry in entries:
            try:
                found = query(str(entry.get("list", "")), context)
            except JMESPathError:
                continue
            elements = found if isinstance(found, list) else [found]
            result, count = self._elements(entry, elements, context, nesting)
            if result.status != "pass":
                return result
            applied += count
        if applied == 0:
            return None
        return RuleResult(self.name, "pass", "rule passed")

    def _elements(
        self, entry: dict[str, Any], elements: list[Any], context: dict[str, Any], nesting: int
    ) -> tuple[RuleResult, int]:
        applied = 0
        for index, element in enumerate(elements):
            if element is None:
                continue
            scoped = entry.get("elementScope")
            if scoped is None:
                scoped = isinstance(element, dict)
            local = {
                **context,
                "element": element,
                "elementIndex": index,
                f"element{nesting}": element,
                f"elementIndex{nesting}": index,
            }
            body = {
                k: v for k, v in entry.items() if k not in ("list", "preconditions", "elementScope")
            }
            result = self.run(
                body, local, entry.get("preconditions"), nesting + 1, element if scoped else None
            )
            if result is None or result.status == "skip":
                continue
            if result.status == "error" and index < len(elements) - 1:
                continue
            if result.status != "pass":
                return RuleResult(
                    self.name, result.status, f"validation failure: {result.message}"
                ), applied
            applied += 1
        return RuleResult(self.name, "pass", ""), applied
