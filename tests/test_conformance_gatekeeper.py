"""The offline Gatekeeper engine on polgen's RENDERED output: gatekeeper-library's gator suites,
and the example fleet rendered with gatekeeper.nativeValidation (CEL) and gatekeeper.legacyRego
(Rego v0) on every catalog fixture against the reference semantics.

The suites: upstream's template.yaml is not in the peer data, so each suite whose policy
polgen's catalog covers runs with polgen's template for that policy: the suite's Constraint keeps
its match, its parameters are translated to polgen's (SUITES below), and every case is judged in
`gator verify` semantics (yes / no / count assertions, message regexps, AdmissionReview case
objects). Cases where polgen deliberately answers differently are listed with a reason in
DIFFERENCES; a suite test fails both when an unlisted case disagrees and when a listed one starts
to agree. Differences no upstream case exercises are shown on our own fixtures in DIVERGENCES.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from polgen.admission import AdmissionRequest, Operation, debug_request, request_for
from polgen.catalog import Catalog, Policy
from polgen.engines.gatekeeper import ENGINE, GatekeeperPolicySet
from polgen.engines.gatekeeper_cel import CompiledCel
from polgen.engines.gatekeeper_rego import CompiledTemplate
from polgen.pipeline import load_inputs, select
from polgen.plan import Binding
from polgen.semantics import evaluate_policy
from polgen.targets import TARGETS
from tests.peer import peer_dir

Json = dict[str, Any]
FIXTURES = Path(__file__).parent / "data" / "gatekeeper_engine" / "conformance"


def _repos_v2(entry: str) -> str:
    """allowedreposv2 entry → polgen repository: `x/*` is the repository x; a pinned tag or digest
    cannot be expressed, so `ubuntu:20.14` widens to the repository `ubuntu`."""
    entry = entry.removesuffix("*").removesuffix("/")
    head, slash, last = entry.rpartition("/")
    return head + slash + re.split(r"[:@]", last)[0]


@dataclass(frozen=True)
class SuiteMapping:
    """A gatekeeper-library suite folder and how its Constraints map onto a polgen policy."""

    folder: str
    policy: str
    parameters: Callable[[Json], Json]
    not_expressible: dict[str, str] = field(default_factory=dict)
    """Upstream parameters polgen drops, with the reason."""


SUITES: tuple[SuiteMapping, ...] = (
    SuiteMapping("general/allowedrepos", "allowed-repos",
                 lambda p: {"repos": list(p.get("repos", []))}),
    SuiteMapping(
        "general/allowedreposv2", "allowed-repos",
        lambda p: {"repos": [_repos_v2(e) for e in p.get("allowedImages", [])]},
        {"allowedImages (exact image, tag pin)": "polgen allows repositories, never a single tag:"
         " `ubuntu:20.14` becomes the repository `ubuntu` (see DIVERGENCES other-tag)"},
    ),
    SuiteMapping("pod-security-policy/privileged-containers", "disallow-privileged",
                 lambda p: {"exemptImages": list(p.get("exemptImages", []))}),
    SuiteMapping("pod-security-policy/host-namespaces", "disallow-host-namespaces",
                 lambda p: {}),
    SuiteMapping(
        "pod-security-policy/host-filesystem", "disallow-host-path", lambda p: {},
        {"allowedHostPaths": "polgen's disallow-host-path forbids every hostPath volume; no"
         " path prefix or readOnly allowance exists"},
    ),
    SuiteMapping(
        "pod-security-policy/capabilities", "restrict-capabilities",
        lambda p: {"allowedCapabilities": list(p.get("allowedCapabilities", []))},
        {"requiredDropCapabilities": "polgen restricts added capabilities only; dropping is not"
         " required (see DIVERGENCES capabilities-not-dropped)"},
    ),
    SuiteMapping("pod-security-policy/allow-privilege-escalation",
                 "disallow-privilege-escalation",
                 lambda p: {"exemptImages": list(p.get("exemptImages", []))}),
)

# "<folder>/<test>/<case>" → why polgen's verdict differs from the suite's, on purpose.
DIFFERENCES: dict[str, str] = {
    "pod-security-policy/host-filesystem/host-filesystem/example-allowed": (
        "the Constraint allows hostPath prefix /foo read-only (allowedHostPaths); polgen cannot"
        " express allowed host paths and denies every hostPath volume"
    ),
}

_JOINED = ("polgen's CEL has one validation per check, joining its offenders with \"; \""
           " (docs/architecture.md), so Gatekeeper reports one violation where the suite counts"
           " one per container")
CEL_DIFFERENCES: dict[str, str] = {
    "general/allowedrepos/allowed-repos/both-disallowed": _JOINED,
    "general/allowedrepos/allowed-repos/all-disallowed": _JOINED,
    "general/allowedreposv2/allowed-reposv2/both-disallowed": _JOINED,
    "general/allowedreposv2/allowed-reposv2/all-disallowed": _JOINED,
    "general/allowedreposv2/allowed-reposv2/disallowed-repository-and-registry": _JOINED,
    "general/allowedreposv2/allowed-reposv2/disallowed-repository-images": _JOINED,
}
"""Further differences when the templates carry CEL (gatekeeper.nativeValidation), which
Gatekeeper then runs instead of the Rego. Verdicts agree; only per-container counts differ."""
SUITE_SETTINGS = ("rego", "nativeValidation")


@dataclass(frozen=True)
class Divergence:
    """Our own case for a deliberate difference that no upstream suite case shows."""

    name: str
    folder: str
    constraint: str
    fixture: str
    upstream: str
    """Upstream's verdict (yes/no violations), from its documented semantics."""
    polgen: str
    reason: str
    suite_parameters: Json = field(default_factory=dict)
    """Overrides of the upstream Constraint's parameters before translation."""


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        "kubectl-debug-privileged", "pod-security-policy/privileged-containers",
        "samples/psp-privileged-container/constraint.yaml", "kubectl-debug-privileged.yaml",
        upstream="no", polgen="yes",
        reason="the library skips every UPDATE (lib.exclude_update), so a privileged debug"
        " container added through pods/ephemeralcontainers is admitted; polgen skips a Pod"
        " UPDATE only without a subresource",
    ),
    Divergence(
        "lookalike-repository", "general/allowedrepos",
        "samples/repo-must-be-openpolicyagent/constraint.yaml", "lookalike-repository.yaml",
        upstream="no", polgen="yes", suite_parameters={"repos": ["openpolicyagent"]},
        reason="allowedrepos v1 matches raw string prefixes, so `openpolicyagent` admits"
        " `openpolicyagentevil/opa`; polgen matches whole repository path components",
    ),
    Divergence(
        "other-tag", "general/allowedreposv2",
        "samples/repo-must-be-openpolicyagent/constraint.yaml", "other-tag.yaml",
        upstream="yes", polgen="no",
        reason="allowedreposv2 pins `ubuntu:20.14` exactly; polgen has no tag pinning and admits"
        " any tag of the repository `ubuntu`",
    ),
    Divergence(
        "capabilities-not-dropped", "pod-security-policy/capabilities",
        "samples/psp-capabilities-restricted/constraint.yaml", "capabilities-not-dropped.yaml",
        upstream="yes", polgen="no",
        reason="requiredDropCapabilities [ALL] has no polgen parameter; restrict-capabilities"
        " only limits what is added",
    ),
)


Rendered = tuple[dict[str, Policy], dict[str, Json]]


@cache
def rendered(setting: str) -> Rendered:
    """polgen's catalog policies and their rendered ConstraintTemplates, by policy id: Rego v1
    only (`rego`), or with the CEL first (`nativeValidation`)."""
    inputs = load_inputs()
    settings = {"nativeValidation": True} if setting == "nativeValidation" else None
    plans, _ = select(inputs.plans, (), (), None, gatekeeper=settings)
    templates: dict[str, Json] = {}
    for plan in plans:
        for document in TARGETS["gatekeeper"].render(plan):
            body = document.body
            if body["kind"] == "ConstraintTemplate":
                templates[body["metadata"]["annotations"]["polgen.dev/policy"]] = body
    return {p.id: p for p in inputs.catalog.policies}, templates


def _yaml(path: Path) -> Json:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    assert len(documents) == 1, f"{path}: a case object must be exactly one document"
    return cast(Json, documents[0])


def _request(document: Json) -> AdmissionRequest:
    """A plain object is reviewed without admission data; an AdmissionReview brings its own."""
    if document.get("kind") != "AdmissionReview":
        return request_for(document, default_namespace="")
    request = document["request"]
    obj, old = request.get("object"), request.get("oldObject")
    operation = cast(Operation, request.get("operation") or "CREATE")
    base = request_for(obj or old, operation=operation, default_namespace="")
    return replace(base, object=obj, old_object=old, sub_resource=request.get("subResource", ""),
                   namespace=request.get("namespace", base.namespace))


def _expected(value: Any) -> str | int:
    """PyYAML reads gator's yes/no as booleans; an omitted `violations` means yes."""
    if value is None or value is True:
        return "yes"
    if value is False:
        return "no"
    return cast("str | int", value)


def _holds(assertion: Json, messages: list[str]) -> bool:
    pattern = assertion.get("message") or ""
    count = sum(1 for message in messages if re.search(pattern, message))
    expected = _expected(assertion.get("violations"))
    if expected == "yes":
        return count > 0
    if expected == "no":
        return count == 0
    return count == expected


def _verdict(assertions: list[Json] | None, messages: list[str]) -> bool:
    """gator verify: every assertion holds; a case without assertions expects no violation."""
    if not assertions:
        return not messages
    return all(_holds(assertion, messages) for assertion in assertions)


def _constraint(
    mapping: SuiteMapping, policy: Policy, template: Json, upstream: Json, overrides: Json
) -> Json:
    parameters = policy.default_parameters()
    parameters.update(mapping.parameters({**(upstream["spec"].get("parameters") or {}),
                                          **overrides}))
    spec: Json = {"match": upstream["spec"].get("match") or {}, "parameters": parameters}
    if "enforcementAction" in upstream["spec"]:
        spec["enforcementAction"] = upstream["spec"]["enforcementAction"]
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": template["spec"]["crd"]["spec"]["names"]["kind"],
        "metadata": {"name": upstream["metadata"]["name"]},
        "spec": spec,
    }


def _messages(
    rendered: Rendered, mapping: SuiteMapping,
    constraint_file: Path, case_object: Json, overrides: Json | None = None,
) -> list[str]:
    policies, templates = rendered
    template = templates[mapping.policy]
    constraint = _constraint(mapping, policies[mapping.policy], template, _yaml(constraint_file),
                             overrides or {})
    policy_set = ENGINE.load([(f"{mapping.policy} (rendered)", template),
                              (str(constraint_file), constraint)])
    return [v.message for v in policy_set.review(_request(case_object))]


@pytest.mark.parametrize("setting", SUITE_SETTINGS)
@pytest.mark.parametrize("mapping", SUITES, ids=lambda m: m.folder)
def test_suite_agrees_with_polgen(mapping: SuiteMapping, setting: str) -> None:
    folder = peer_dir("gatekeeper-library", "library", *mapping.folder.split("/"))
    suite = _yaml(folder / "suite.yaml")
    disagreements: dict[str, list[str]] = {}
    total = 0
    for test in suite["tests"]:
        for case in test.get("cases") or []:
            total += 1
            messages = _messages(rendered(setting), mapping, folder / test["constraint"],
                                 _yaml(folder / case["object"]))
            if not _verdict(case.get("assertions"), messages):
                disagreements[f"{mapping.folder}/{test['name']}/{case['name']}"] = messages
    differences = {**DIFFERENCES, **(CEL_DIFFERENCES if setting == "nativeValidation" else {})}
    documented = {key for key in differences if key.startswith(f"{mapping.folder}/")}
    assert total > 0
    assert set(disagreements) == documented, disagreements


@pytest.mark.parametrize("setting", SUITE_SETTINGS)
@pytest.mark.parametrize("divergence", DIVERGENCES, ids=lambda d: d.name)
def test_documented_divergence(divergence: Divergence, setting: str) -> None:
    folder = peer_dir("gatekeeper-library", "library", *divergence.folder.split("/"))
    mapping = next(m for m in SUITES if m.folder == divergence.folder)
    messages = _messages(rendered(setting), mapping, folder / divergence.constraint,
                         _yaml(FIXTURES / divergence.fixture), divergence.suite_parameters)
    assert divergence.upstream != divergence.polgen
    assert _verdict([{"violations": divergence.polgen}], messages), messages


# ---- the example fleet with gatekeeper.nativeValidation / legacyRego, on every catalog fixture --

FIXTURE_NAMESPACE = "prd"
FLEET_SETTINGS = ("nativeValidation", "legacyRego")
IMPLIED = re.compile(r"^\[Implied by [^\]]+\] ")


@dataclass(frozen=True)
class FleetPolicy:
    """One policy of the rendered fleet: the engine loaded with its ConstraintTemplate, the
    Constraint of its enforcing binding and the ExpansionTemplates, and that binding."""

    binding: Binding
    policy_set: GatekeeperPolicySet


@cache
def _catalog() -> Catalog:
    return load_inputs().catalog


@cache
def fleet_policies(setting: str) -> dict[str, FleetPolicy]:
    """The first cluster of the example fleet with `gatekeeper: {setting: true}`, rendered; the
    opt-in policies no group binds get an enforcing binding in prd, so every fixture is judged.

    Which namespaces a Constraint selects is exercised by the match tests; here the fixtures
    choose their own namespace (disallow-default-namespace's are in `default`), so the rendered
    Constraint's `namespaces` matcher is dropped.
    """
    inputs = load_inputs()
    plans, _ = select(inputs.plans, (), (), None, gatekeeper={setting: True})
    plan = plans[0]
    bound = {binding.policy.id for binding in plan.bindings}
    extra = tuple(
        Binding(cluster=plan.name, group=FIXTURE_NAMESPACE, policy=policy,
                parameters=policy.default_parameters(), action="enforce",
                namespaces=(FIXTURE_NAMESPACE,), excluded_namespaces=(), exempt_images=())
        for policy in inputs.catalog.policies if policy.id not in bound
    )
    plan = replace(plan, bindings=plan.bindings + extra)
    documents = {doc.file: doc.body for doc in TARGETS["gatekeeper"].render(plan)}
    expansions = [(file, body) for file, body in sorted(documents.items())
                  if body["kind"] == "ExpansionTemplate"]
    policies: dict[str, FleetPolicy] = {}
    for binding in plan.bindings:
        if binding.policy.id in policies or binding.action != "enforce":
            continue
        template_file = f"constrainttemplate-{binding.policy.id}.yaml"
        constraint_file = f"constraint-{binding.name}.yaml"
        constraint = cast(Json, yaml.safe_load(yaml.safe_dump(documents[constraint_file])))
        constraint["spec"]["match"].pop("namespaces", None)
        policy_set = ENGINE.load([(template_file, documents[template_file]),
                                  (constraint_file, constraint), *expansions])
        policies[binding.policy.id] = FleetPolicy(binding, policy_set)
    return policies


def fixture_request(path: Path) -> AdmissionRequest:
    """CREATE of the manifest in namespace prd unless it names one; `kubectl debug` (UPDATE of
    pods/ephemeralcontainers) for an `ephemeral-*` fixture."""
    obj = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    if path.name.startswith("ephemeral-"):
        return debug_request(obj, FIXTURE_NAMESPACE)
    return request_for(obj, default_namespace=FIXTURE_NAMESPACE)


def offenders(messages: list[str], cel: bool) -> list[str]:
    """Per-offender messages: Rego reports each once (a set), a CEL validation joins a check's
    offenders with "; "; the `[Implied by ...]` prefix of expanded Pods is dropped."""
    plain = [IMPLIED.sub("", message) for message in messages]
    if cel:
        return sorted(part for message in plain for part in message.split("; "))
    return sorted(set(plain))


@pytest.mark.parametrize("setting", FLEET_SETTINGS)
@pytest.mark.parametrize("policy_id", [entry.policy.id for entry in _catalog().entries.values()])
def test_rendered_fleet_judges_every_fixture_like_the_reference(
    setting: str, policy_id: str
) -> None:
    fleet = fleet_policies(setting)[policy_id]
    binding, policy_set = fleet.binding, fleet.policy_set
    [compiled] = policy_set.templates.values()
    cel = isinstance(compiled, CompiledCel)
    # nativeValidation renders CEL first, and Gatekeeper (and this engine) then runs only the CEL;
    # legacyRego renders Rego v0, evaluated in its v1 reading.
    assert cel if setting == "nativeValidation" else isinstance(compiled, CompiledTemplate)
    entry = _catalog().entries[policy_id]
    disagreements: dict[str, tuple[list[str], list[str]]] = {}
    fixtures = [(verdict, path) for verdict in ("allowed", "disallowed")
                for path in entry.fixtures(verdict)]
    for verdict, path in fixtures:
        request = fixture_request(path)
        expected = evaluate_policy(binding.policy, binding.parameters, request,
                                   binding.exempt_images)
        assert bool(expected) == (verdict == "disallowed"), path
        violations = policy_set.review(request)
        assert {v.action for v in violations} <= {"deny"}
        got = offenders([v.message for v in violations], cel)
        want = sorted(expected) if cel else sorted(set(expected))
        if got != want:
            disagreements[f"{verdict}/{path.name}"] = (got, want)
    assert fixtures
    assert not disagreements, disagreements
