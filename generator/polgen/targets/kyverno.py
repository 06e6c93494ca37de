"""Kyverno: one `kyverno.io/v1` ClusterPolicy per binding, or ValidatingPolicies (other module).

Each check becomes one rule (`foreach` + `deny` with JMESPath) from its kind's template in
templates/kyverno/checks/. Pod rules match `Pod`; Kyverno's autogen derives the rules for
Deployments, CronJobs and the other pod controllers by rewriting `request.object.spec` and
`request.object.metadata` into the pod template's, so every pod rule reads the pod only through
those two paths (the namespace comes from `request.namespace`, which autogen leaves alone).
Service rules match `Service`; autogen never touches them.

Fleet data never appears inside a `{{ }}` JMESPath expression: Kyverno finds variables with a
brace-matching regex that a `{` or `}` in the data would break (silently turning a deny key into
plain text). Allowed values and image patterns travel as rule `context` variables, escaped with
`kyverno_escape`, and expressions refer to them by name; comparisons use JMESPath `contains`, so
they are exact and typed (`"true"` is not `true`). Where a message names a value from the data
(`must contain "ALL"`, `must include "team"`), the template unrolls one deny condition per value
with the value written into the condition's message (escaped), never substituted at run time.

Image repositories do not use `image_normalize()` plus wildcard operators: the normalized form
depends on Kyverno's `defaultRegistry` setting and on the version (newer releases write
`docker.io/library/x`, older ones `docker.io/x`), and the wildcard operators are not exact (`?`,
and with go-wildcard v2 also `.`, match any character, so `registry.corp/*` would admit the
Docker Hub image `registry-corp/x`). Instead the allowed entries are compiled here, from
`polgen.imageref.allowed_prefixes`, into one anchored Go RE2 regex over the raw image string for
Kyverno's `regex_match`; the tests compare it with `polgen.imageref.is_allowed` image by image.
Image exemptions and pod-annotation values (exact, or a prefix when ending in `*`) are regexes
too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from polgen.catalog import Policy
from polgen.checks import CONTAINER_TYPES, Check, resolve
from polgen.errors import PolgenError
from polgen.imageref import DOCKER_HUB, allowed_prefixes
from polgen.plan import Binding, ClusterPlan
from polgen.resources import templates_dir
from polgen.targets.base import Document, Support, render_document

FAILURE_ACTIONS: dict[str, str] = {"enforce": "Enforce", "warn": "Audit", "audit": "Audit"}
"""Binding action -> rule `validate.failureAction`; `warn` also sets `spec.emitWarning`."""

SUBJECT_KINDS: dict[str, str] = {"pod": "Pod", "service": "Service"}
"""The kind a rule matches per policy subject; autogen adds the pod controllers to `Pod`."""

CONTAINER_LABELS: dict[str, str] = {
    "containers": "container",
    "initContainers": "initContainer",
    "ephemeralContainers": "ephemeralContainer",
}
"""Check kinds with a template in templates/kyverno/checks/."""

VALUE_FIELDS: tuple[str, ...] = ("allowed", "forbidden", "values", "keys", "repos", "min", "max")
"""Check fields holding literals or `{param: name}`: resolved per binding before rendering."""

MAX_RULE_NAME = 63 - len("autogen-cronjob-")
"""Autogen prefixes rule names and cuts them at 63 characters; shorter names stay distinct."""

NEVER_MATCHES = r"\b\B"
_METACHARACTERS = frozenset("\\.^$|?*+()[]{}")
_DOCKER_ALIAS = "index.docker.io"
_DOCKER_REGISTRY = r"(?:docker\.io|index\.docker\.io)/"
_ONE_COMPONENT = "[^/@]*"
"""A one-component image name `x[:tag]`: Docker Hub's `library/x`, whatever the split."""
_TAG = "(?::[^/:@]*)"
"""A tag follows the last `:` after the last `/`."""
_BELOW = "/[^@]*"
"""Anything below a repository prefix, tag included (the tag split is after the last `/`)."""


def regex_literal(text: str) -> str:
    """`text` as a regex matching itself, in the syntax RE2 (Kyverno) and Python share.

    Metacharacters are backslash-escaped, so the result holds neither `{{` nor `$(` (which Kyverno
    would substitute) nor `request.object.spec` (which autogen would rewrite); other ASCII
    controls and spaces become `\\xHH`; everything else stands for itself.
    """
    out = []
    for char in text:
        if char in _METACHARACTERS:
            out.append("\\" + char)
        elif char == " " or (char.isascii() and not char.isprintable()):
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _bare_docker_component() -> str:
    """A first path component that is no registry host (no `.` or `:`, not `localhost`), possibly
    empty; RE2 has no lookahead, so `localhost` is excluded letter by letter."""
    word, chars = "localhost", "[^/.:@]"
    options = [f"[^/.:@{word[0]}]{chars}*"]
    options += [f"{word[:end]}(?:[^/.:@{word[end]}]{chars}*)?" for end in range(1, len(word))]
    options.append(f"{word}{chars}+")
    return "(?:" + "|".join(options) + ")?"


def _equal_or_below(path: str) -> list[str]:
    """Names whose repository path is `path` (then a tag, required when the last component
    holds a `:`, as only a tag split leaves one there) or lies below `path/`."""
    tag = _TAG if ":" in path.rsplit("/", 1)[-1] else _TAG + "?"
    return [regex_literal(path) + tag, regex_literal(path) + _BELOW]


def _repository_alternatives(prefix: str) -> list[str]:
    """Regexes for the image names (before any `@digest`) whose repository, as
    `polgen.imageref` resolves it, equals `prefix` or lies below `prefix/`."""
    registry, slash, path = prefix.partition("/")
    if "@" in prefix or registry == _DOCKER_ALIAS:
        return []  # no repository contains `@` or keeps the index.docker.io alias
    if registry != DOCKER_HUB:
        return _equal_or_below(prefix) if slash else [regex_literal(registry) + _BELOW]
    # Docker Hub: `docker.io/`, `index.docker.io/` or no registry; one component `x` is library/x.
    if not slash:
        return [_DOCKER_REGISTRY + "[^@]*", _ONE_COMPONENT, _bare_docker_component() + _BELOW]
    # A qualified Docker Hub path always holds a `/`, so a one-component prefix is only a parent.
    named = _equal_or_below(path) if "/" in path else [regex_literal(path) + _BELOW]
    official: list[str] = []
    if path == "library":
        official = [_ONE_COMPONENT]
    elif path.startswith("library/") and path.count("/") == 1 and ":" not in path:
        official = [regex_literal(path.removeprefix("library/")) + _TAG + "?"]
    bare = [] if _is_host(path.split("/", 1)[0]) else named
    return [_DOCKER_REGISTRY + "(?:" + "|".join(named + official) + ")", *bare, *official]


def repository_pattern(entries: list[str]) -> str:
    """One anchored regex admitting exactly the images `polgen.imageref.is_allowed` admits."""
    alternatives = [
        alternative
        for entry in entries
        for prefix in allowed_prefixes(entry)
        for alternative in _repository_alternatives(prefix)
    ]
    if not alternatives:
        return NEVER_MATCHES
    return "(?s)^(?:" + "|".join(dict.fromkeys(alternatives)) + ")(?:@.*)?$"


def prefix_pattern(patterns: Iterable[str]) -> str:
    """An anchored regex for strings equal to a pattern, or starting with it when the pattern
    ends in `*` (image exemptions, pod-annotation values)."""
    alternatives = [
        regex_literal(p[:-1]) if p.endswith("*") else regex_literal(p) + "$" for p in patterns
    ]
    if not alternatives:
        return NEVER_MATCHES
    return "(?s)^(?:" + "|".join(dict.fromkeys(alternatives)) + ")"


def exemption_pattern(patterns: tuple[str, ...]) -> str | None:
    """The regex of a binding's exempt images, or None when it exempts none."""
    return prefix_pattern(patterns) if patterns else None


def unsupported(check: Check) -> str | None:
    """Why the templates cannot express a check, or None when they can."""
    if not (templates_dir() / "kyverno" / "checks" / f"{check.kind}.yaml.j2").is_file():
        return f"no Kyverno template for check kind {check.kind!r}"
    if getattr(check, "containerTypes", None) == []:
        return f"{check.kind}: an empty containerTypes selects no container"
    return None


def _field_suffix(field: str, fields: list[str]) -> str:
    """The fewest trailing components of `field` that no other field of the policy ends with
    (`livenessprobe-httpget-host` next to `readinessprobe-httpget-host`)."""
    parts = field.split(".")
    others = [other.split(".") for other in fields if other and other != field]
    depth = 1
    while depth < len(parts) and any(o[-depth:] == parts[-depth:] for o in others):
        depth += 1
    return "-".join(parts[-depth:]).lower()


def rule_names(checks: list[Check]) -> list[str]:
    """`<kind>-<distinguishing field components>`, numbered when repeated, short enough for
    autogen's prefixes."""
    fields = [str(getattr(check, "field", "")) for check in checks]
    names: list[str] = []
    for check, field in zip(checks, fields, strict=True):
        base = f"{check.kind}-{_field_suffix(field, fields)}" if field else check.kind
        if len(base) > MAX_RULE_NAME:
            digest = hashlib.sha256(base.encode()).hexdigest()[:6]
            base = f"{base[: MAX_RULE_NAME - 7]}-{digest}"
        name, number = base, 2
        while name in names:
            suffix = f"-{number}"
            name, number = base[: MAX_RULE_NAME - len(suffix)] + suffix, number + 1
        names.append(name)
    return names


@dataclass(frozen=True)
class RuleInput:
    """What one check-kind template needs to render one rule."""

    name: str
    check: Check
    values: dict[str, Any]
    """The check's `VALUE_FIELDS` that it sets, parameters resolved for the binding."""
    skips: list[tuple[str, Any]]
    """(pod-spec field, value) of each skipIf in force: without `param`, or with a true one."""
    pattern: str
    """The regex a kind matches strings with: image repositories, pod-annotation values."""
    exempt_pattern: str | None
    container_types: list[tuple[str, str]]
    gates_pod_updates: bool
    """Checks of immutable pod fields skip a Pod UPDATE other than `kubectl debug`
    (docs/architecture.md, Operations)."""


def _values(check: Check, parameters: dict[str, Any]) -> dict[str, Any]:
    found = {name: getattr(check, name, None) for name in VALUE_FIELDS}
    return {name: resolve(value, parameters) for name, value in found.items() if value is not None}


def _pattern(check: Check, values: dict[str, Any]) -> str:
    if check.kind == "image-repository":
        return repository_pattern([str(repo) for repo in values["repos"]])
    if check.kind == "pod-annotation":
        # Annotation values are strings: a non-string entry can never equal one.
        return prefix_pattern(v for v in values["allowed"] if isinstance(v, str))
    return ""


def rule_inputs(binding: Binding) -> list[RuleInput]:
    """One rule per check of the binding's policy, with its values resolved."""
    checks = binding.policy.checks
    parameters = binding.parameters
    exemptions = exemption_pattern(binding.exempt_images)
    inputs = []
    for name, check in zip(rule_names(checks), checks, strict=True):
        values = _values(check, parameters)
        types = getattr(check, "containerTypes", None)
        chosen = types or ()
        skips = [
            (skip.field, skip.equals)
            for skip in getattr(check, "skipIf", ())
            if skip.param is None or parameters.get(skip.param) is True
        ]
        inputs.append(
            RuleInput(
                name=name,
                check=check,
                values=values,
                skips=skips,
                pattern=_pattern(check, values),
                exempt_pattern=exemptions if types is not None else None,
                container_types=[(t, CONTAINER_LABELS[t]) for t in CONTAINER_TYPES if t in chosen],
                gates_pod_updates=check.subject == "pod" and not check.mutable,
            )
        )
    return inputs


def match_block(binding: Binding) -> dict[str, Any]:
    """The subject's kind (a `Pod` rule also sees `pods/ephemeralcontainers`) on CREATE and
    UPDATE in the binding's namespaces."""
    resources: dict[str, Any] = {
        "kinds": [SUBJECT_KINDS[binding.policy.subject]],
        "operations": ["CREATE", "UPDATE"],
    }
    if binding.namespaces:
        resources["namespaces"] = list(binding.namespaces)
    return {"any": [{"resources": resources}]}


def exclude_block(binding: Binding) -> dict[str, Any] | None:
    """Excluded namespaces, without kinds, so autogen keeps them for controllers too."""
    if not binding.excluded_namespaces:
        return None
    return {"any": [{"resources": {"namespaces": list(binding.excluded_namespaces)}}]}


def render_cluster_policy(binding: Binding) -> Document:
    """The ClusterPolicy of one binding: its rules rendered from the check-kind templates."""
    for check in binding.policy.checks:
        reason = unsupported(check)
        if reason:
            raise PolgenError.single(
                f"policy {binding.policy.id}", f"cannot render a Kyverno ClusterPolicy: {reason}"
            )
    common = {
        "match": match_block(binding),
        "exclude": exclude_block(binding),
        "failure_action": FAILURE_ACTIONS[binding.action],
    }
    rules = [
        render_document(f"kyverno/checks/{rule.check.kind}.yaml.j2", rule=rule, **common)
        for rule in rule_inputs(binding)
    ]
    body = render_document(
        "kyverno/clusterpolicy.yaml.j2",
        binding=binding,
        policy=binding.policy,
        subject_kind=SUBJECT_KINDS[binding.policy.subject],
        emit_warning=binding.action == "warn",
        rules=rules,
    )
    return Document(f"clusterpolicy-{binding.name}.yaml", body)


class KyvernoTarget:
    name = "kyverno"
    summary = (
        "Kyverno ClusterPolicies (foreach/deny JMESPath rules, autogen for pod controllers)"
        " or CEL ValidatingPolicies, per the cluster's kyvernoFlavor"
    )
    minimum_versions = (
        "Kyverno >= 1.13 for ClusterPolicy (per-rule validate.failureAction and"
        " allowExistingViolations; kyverno.io/v1 ClusterPolicy is deprecated since 1.17, removal"
        " planned for 1.20); Kyverno >= 1.17 for ValidatingPolicy (policies.kyverno.io/v1)"
    )

    def support(self, policy: Policy) -> Support:
        reasons = sorted({r for r in map(unsupported, policy.checks) if r is not None})
        if reasons:
            return Support(False, "; ".join(reasons))
        if policy.subject == "service":
            return Support(True, "ClusterPolicy deny rules on Services or a CEL ValidatingPolicy")
        return Support(
            True,
            "ClusterPolicy foreach/deny rules (autogen for pod controllers, kubectl debug through"
            " pods/ephemeralcontainers) or a CEL ValidatingPolicy",
        )

    def render(self, plan: ClusterPlan) -> list[Document]:
        if plan.kyverno_flavor == "ValidatingPolicy":
            from polgen.targets.kyverno_validating import render_validating_policies

            return render_validating_policies(plan)
        return [render_cluster_policy(binding) for binding in plan.bindings]


TARGET = KyvernoTarget()
