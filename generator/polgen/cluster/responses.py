"""What the API server answered, read as violations of one target's own policies.

A request sent to a target's namespace counts as denied (or warned) by that target only when the
answer names one of the target's own resources, in the exact format its engine uses. Anything
else (API validation errors, webhook failures, another engine's denial) is a problem, never a
verdict, so no outcome is attributed to the wrong engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from polgen.admission import Action, Verdict, Violation
from polgen.cluster.pss_reasons import failed_checks

Engine = Literal["gatekeeper", "kyverno", "kyverno-vpol", "vap", "psa"]

_WARNING = re.compile(r'\d{3} \S+ "((?:[^"\\]|\\.)*)"')
_WEBHOOK_DENIAL = re.compile(r'admission webhook "([^"]+)" denied the request:\s*(.*)', re.DOTALL)
_GATEKEEPER = re.compile(r"^\[([^\]]+)\] (?:\[Implied by [^\]]+\] )*(.*)$", re.DOTALL)
_KYVERNO_HEADER = re.compile(r"resource \S+ was blocked due to the following policies:?[ \t]*\n")
_KYVERNO_WARNING = re.compile(r"^policy ([a-z0-9-]+)(?:\.(\S+))?: (.*)$", re.DOTALL)
_VPOL = re.compile(r"Policy (\S+) failed: (.*?)(?=(?:;\s*)?Policy \S+ failed: |$)", re.DOTALL)
_VAP = re.compile(
    r"ValidatingAdmissionPolicy '([^']+)' with binding '([^']+)' denied request: (.*)", re.DOTALL
)
GATEKEEPER_VAP_PREFIX = "gatekeeper-"
"""Gatekeeper (>= 3.20, CEL templates) also generates a ValidatingAdmissionPolicy per template
and a binding `gatekeeper-<constraint>` per constraint; the API server may deny first."""
_VAP_WARNING = re.compile(
    r"^Validation failed for ValidatingAdmissionPolicy '([^']+)' with binding '[^']+': (.*)$",
    re.DOTALL,
)
_PSA = re.compile(r'(?:^|: )(would )?violates? PodSecurity "([^"]+)": (.*)$', re.DOTALL)


@dataclass(frozen=True)
class ApiReply:
    """One API response: HTTP status, the Status message of a failure, and the warnings."""

    status: int
    message: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status <= 299


@dataclass(frozen=True)
class Reading:
    """The target's verdict on one request, or why the answer is not the target's."""

    verdict: Verdict | None
    problem: str = ""
    notes: tuple[str, ...] = ()
    """Warnings that are not the target's (API deprecations and the like)."""


def warnings_from_headers(headers: Any) -> tuple[str, ...]:
    """The texts of the `Warning: 299 - "text"` response headers (RFC 7234 quoting undone)."""
    if headers is None:
        return ()
    if hasattr(headers, "getlist"):
        values = list(headers.getlist("Warning"))
    else:
        value = headers.get("Warning") or headers.get("warning")
        values = [value] if value else []
    texts: list[str] = []
    for value in values:
        texts.extend(re.sub(r"\\(.)", r"\1", m) for m in _WARNING.findall(str(value)))
    return tuple(texts)


def status_message(body: str | bytes | None) -> str:
    """The `message` of a metav1.Status error body (the body itself when it is not JSON)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])
    return text.strip()


def _gatekeeper(text: str, owned: frozenset[str], action: Action) -> list[Violation] | None:
    """`[constraint] message` per line; `[Implied by <expansion>]` prefixes (one per
    expansion level) mark violations of the Pods a workload would create."""
    found: list[Violation] = []
    for line in text.splitlines():
        match = _GATEKEEPER.match(line.strip())
        if match is None or match.group(1) not in owned:
            return None
        found.append(Violation(match.group(1), match.group(2).strip(), action))
    return found or None


def _kyverno(text: str, owned: frozenset[str]) -> list[Violation] | None:
    """After Kyverno's header the policies are YAML: {policy: {rule: message}}."""
    header = _KYVERNO_HEADER.search(text)
    if header is None:
        return None
    try:
        block = yaml.safe_load(text[header.end() :])
    except yaml.YAMLError:
        return None
    if not isinstance(block, dict) or not block or not {str(k) for k in block} <= owned:
        return None
    found: list[Violation] = []
    for policy, rules in block.items():
        if not isinstance(rules, dict):
            return None
        found.extend(
            Violation(str(policy), str(message).strip(), "deny", str(rule))
            for rule, message in rules.items()
        )
    return found


def _vpol(text: str, owned: frozenset[str]) -> list[Violation] | None:
    """`Policy <name> failed: <message>` for each failing ValidatingPolicy."""
    found = _VPOL.findall(text)
    if not found or any(name not in owned for name, _ in found):
        return None
    return [Violation(name, message.strip(), "deny") for name, message in found]


def _pod_security(text: str, action: Action) -> Violation | None:
    """`[would ]violate(s) PodSecurity "<level>:<version>": <ForbiddenDetail>`."""
    match = _PSA.search(text)
    if match is None or bool(match.group(1)) != (action != "deny"):
        return None
    checks = failed_checks(match.group(3).strip())
    rule = ", ".join(checks) if checks else None
    return Violation(f"PodSecurity {match.group(2)}", match.group(3).strip(), action, rule)


def _denials(engine: Engine, message: str, owned: frozenset[str]) -> list[Violation] | None:
    """The target's violations when `message` is its denial, else None."""
    if engine == "psa":
        violation = _pod_security(message, "deny")
        return [violation] if violation else None
    vap = _VAP.search(message)
    if engine == "vap":
        if vap is None or vap.group(1) not in owned:
            return None
        return [Violation(vap.group(1), vap.group(3).strip(), "deny")]
    if engine == "gatekeeper" and vap is not None:
        constraint = vap.group(2).removeprefix(GATEKEEPER_VAP_PREFIX)
        generated = vap.group(2).startswith(GATEKEEPER_VAP_PREFIX) and constraint in owned
        return [Violation(constraint, vap.group(3).strip(), "deny")] if generated else None
    webhook = _WEBHOOK_DENIAL.search(message)
    if webhook is None:
        return None
    name, text = webhook.group(1), webhook.group(2).strip()
    if engine == "gatekeeper" and name == "validation.gatekeeper.sh":
        return _gatekeeper(text, owned, "deny")
    if engine == "kyverno" and name.startswith("validate.kyverno.svc"):
        return _kyverno(text, owned)
    if engine == "kyverno-vpol" and name.startswith("vpol.validate.kyverno.svc"):
        return _vpol(text, owned)
    return None


def _warning(engine: Engine, text: str, owned: frozenset[str]) -> Violation | None:
    """The target's violation when the warning `text` is its own, else None."""
    if engine == "psa":
        return _pod_security(text, "warn")
    if engine == "vap":
        vap = _VAP_WARNING.match(text)
        ok = vap is not None and vap.group(1) in owned
        return Violation(vap.group(1), vap.group(2).strip(), "warn") if vap and ok else None
    if engine == "gatekeeper":
        found = _gatekeeper(text, owned, "warn")
        return found[0] if found else None
    kyverno = _KYVERNO_WARNING.match(text)
    if kyverno is None or kyverno.group(1) not in owned:
        return None
    return Violation(kyverno.group(1), kyverno.group(3).strip(), "warn", kyverno.group(2))


def read_reply(engine: Engine, owned: Iterable[str], reply: ApiReply) -> Reading:
    """Denied, warned or admitted by the target's own resources (named in `owned`)."""
    names = frozenset(owned)
    warned: list[Violation] = []
    notes: list[str] = []
    for text in reply.warnings:
        violation = _warning(engine, text, names)
        if violation is None:
            notes.append(text)
        else:
            warned.append(violation)
    if reply.succeeded:
        return Reading(Verdict(tuple(warned)), notes=tuple(notes))
    denied = _denials(engine, reply.message, names)
    if denied is None:
        problem = f"HTTP {reply.status} is not a {engine} denial: {reply.message}"
        return Reading(None, problem, tuple(notes))
    return Reading(Verdict((*denied, *warned)), notes=tuple(notes))
