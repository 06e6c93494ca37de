"""`polgen test`: submit every catalog fixture and attack scenario to every target of every
cluster, and judge each outcome against what must happen.

A *case* is one admission request (`Case.request`): a catalog fixture (in namespace `prd` unless
it names its own; an `ephemeral-*.yaml` fixture is the `kubectl debug` UPDATE of
`pods/ephemeralcontainers`) or a scenario of `catalog/scenarios/`. A *runner* evaluates cases
and returns raw observations; the harness judges them (`judge`) into `Outcome`s: denied /
warned / admitted, the catalog policies behind it, and whether that is what must happen.

Runner protocol (the offline runner is here; `polgen.cluster.runner.ClusterRunner` runs on a real
cluster)::

    class Runner(Protocol):
        name: str   # "offline", "kind", "kubeconfig": names the runner in reports
        def run(self, plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> list[Observation]

- `plans`: the clusters to test, each narrowed to the targets to test (`plan.targets`);
  `TARGETS[t].render(plan)` gives what to install for target `t`.
- Return one `Observation(case.id, plan.name, target, verdict)` per case, plan and target the
  runner evaluated. `verdict` is a `polgen.admission.Verdict` with one `Violation` per denial
  (action `deny`) and per warning (action `warn`). So that the harness can name the catalog
  policy behind it, `Violation.policy` is the `metadata.name` of the rendered resource that
  produced it (Constraint, ClusterPolicy, ValidatingPolicy, ValidatingAdmissionPolicy or its
  binding); for Pod Security it is `PodSecurity <level>:<version>` with `rule` the failing PSS
  check IDs joined by ", " (as `polgen.engines.psa` reports them). An unattributed violation
  still decides the outcome.
- A case the runner could not evaluate is simply left out: the harness reports every missing
  observation as unexpected, never as a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from polgen import yamlio
from polgen.admission import (
    KNOWN_KINDS,
    AdmissionRequest,
    Verdict,
    Violation,
    debug_request,
    request_for,
)
from polgen.catalog import Catalog, Policy
from polgen.engines.kyverno import ENGINE as KYVERNO_ENGINE
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.pss import CHECKS, LEVELS
from polgen.manifests import Manifest
from polgen.plan import Binding, ClusterPlan, NamespaceSecurity
from polgen.scan import fleet_sources, scan
from polgen.scenarios import Outcome as Result
from polgen.scenarios import ScenarioFile
from polgen.targets import TARGETS

KYVERNO = "kyverno"
KYVERNO_INSTALL_FILTERS = KYVERNO_ENGINE.filters

FIXTURE_NAMESPACE = "prd"
EPHEMERAL_PREFIX = "ephemeral-"
PSA = "psa"
Status = Literal["expected", "unexpected", "unjudged"]
_BY_ACTION: dict[str, Result] = {"enforce": "denied", "warn": "warned", "audit": "admitted"}
_ACTION_OF: dict[Result, str] = {"denied": "deny", "warned": "warn"}
_PSA_MODE: dict[Result, str] = {"denied": "enforce", "warned": "warn"}
PSS_CONTROLS: dict[str, tuple[str, ...]] = {
    "HostProcess": ("windowsHostProcess",),
    "Host Namespaces": ("hostNamespaces",),
    "Privileged Containers": ("privileged",),
    "Capabilities": ("capabilities_baseline", "capabilities_restricted"),
    "HostPath Volumes": ("hostPathVolumes",),
    "Host Ports": ("hostPorts",),
    "Host Probes / Lifecycle Hooks": ("hostProbesAndHostLifecycle",),
    "AppArmor": ("appArmorProfile",),
    "SELinux": ("seLinuxOptions",),
    "/proc Mount Type": ("procMount", "procMount_restricted"),
    "Seccomp": ("seccompProfile_baseline", "seccompProfile_restricted"),
    "Sysctls": ("sysctls",),
    "Volume Types": ("restrictedVolumes",),
    "Privilege Escalation": ("allowPrivilegeEscalation",),
    "Running as Non-root": ("runAsNonRoot",),
    "Running as Non-root user": ("runAsUser",),
}
"""Pod Security Standards controls (a policy's `podSecurity.control`) -> the IDs of the PSS
checks that report them (`polgen.engines.pss.CHECKS`): how a PSA finding names its control."""


@dataclass(frozen=True)
class Case:
    """One admission request to submit, and what it is about."""

    id: str
    source: str
    description: str
    request: AdmissionRequest
    scenario: ScenarioFile | None = None
    fixture: tuple[str, Literal["allowed", "disallowed"]] | None = None
    """(policy id, verdict) for a catalog fixture."""


@dataclass(frozen=True)
class Observation:
    """What a runner saw for one case in one target of one cluster."""

    case: str
    cluster: str
    target: str
    verdict: Verdict


class Runner(Protocol):
    """Evaluates cases in some admission chain; see the module docstring."""

    name: str

    def run(self, plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> list[Observation]:
        """One observation per evaluated case x plan x target of the plan."""
        ...


@dataclass(frozen=True)
class Expectation:
    """What must happen: the result, and which catalog policies must deny it (or warn)."""

    result: Result
    flagged_by: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """One case in one target of one cluster, judged."""

    runner: str
    case: Case
    cluster: str
    target: str
    result: Result | None
    """None when the runner returned no observation."""
    policies: tuple[str, ...]
    """Catalog policies behind the violations that made the result."""
    violations: tuple[Violation, ...]
    expectation: Expectation | None
    problems: tuple[str, ...]

    @property
    def status(self) -> Status:
        if self.problems:
            return "unexpected"
        return "unjudged" if self.expectation is None else "expected"


class OfflineRunner:
    """polgen's own engines on the rendered output: the real Rego and CEL, polgen's Kyverno
    evaluator and Pod Security checker (`polgen.scan`)."""

    name = "offline"

    def run(self, plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> list[Observation]:
        manifests = [Manifest(case.id, case.request) for case in cases]
        return [
            Observation(r.manifest.file, r.cluster or "", r.target, r.verdict)
            for r in scan(manifests, fleet_sources(plans))
        ]


def _description(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first.removeprefix("#").strip() if first.startswith("#") else ""


def fixture_cases(catalog: Catalog, namespace: str = FIXTURE_NAMESPACE) -> list[Case]:
    """Every catalog fixture as a request, in `namespace` unless the fixture names its own."""
    cases = []
    for policy_id, entry in catalog.entries.items():
        for verdict in ("allowed", "disallowed"):
            for file in entry.fixtures(verdict):
                text = file.read_text(encoding="utf-8")
                obj = next(yamlio.load_all(text, file))
                metadata = obj.setdefault("metadata", {})
                namespaced = KNOWN_KINDS.get(str(obj.get("kind")), ("", "", "", True))[3]
                where = metadata.setdefault("namespace", namespace) if namespaced else ""
                request = (
                    debug_request(obj, where)
                    if file.name.startswith(EPHEMERAL_PREFIX)
                    else request_for(obj, "CREATE", where)
                )
                cases.append(
                    Case(
                        f"fixture/{policy_id}/{verdict}/{file.stem}",
                        str(file),
                        _description(text),
                        request,
                        fixture=(policy_id, verdict),
                    )
                )
    return cases


def scenario_cases(scenarios: Sequence[ScenarioFile]) -> list[Case]:
    """Every scenario as its admission request."""
    return [
        Case(
            f"scenario/{s.scenario.name}",
            str(s.file),
            s.scenario.description,
            s.scenario.admission_request(),
            scenario=s,
        )
        for s in scenarios
    ]


def binding_for(plan: ClusterPlan, policy_id: str, namespace: str) -> Binding | None:
    """The binding of a policy that selects `namespace` in this cluster, if any."""
    for binding in plan.bindings:
        if binding.policy.id != policy_id:
            continue
        if namespace in binding.namespaces or (
            not binding.namespaces and namespace not in binding.excluded_namespaces
        ):
            return binding
    return None


def _security(plan: ClusterPlan, namespace: str) -> NamespaceSecurity | None:
    return next((n for n in plan.namespaces if n.namespace == namespace), None)


def _psa_covers(plan: ClusterPlan, namespace: str, policy: Policy, mode: str) -> bool:
    """Does the namespace's Pod Security `mode` level include the policy's PSS control?"""
    security = _security(plan, namespace)
    level = getattr(security.labels, mode) if security else None
    if level is None or policy.podSecurity is None:
        return False
    return LEVELS.index(level) >= LEVELS.index(policy.podSecurity.level)


def pss_checks(policy: Policy) -> frozenset[str]:
    """The PSS check IDs that report a violation of the policy's control, including the checks
    that replace them at restricted (hostPath volumes are reported as restricted volumes)."""
    if policy.podSecurity is None:
        return frozenset()
    ids = set(PSS_CONTROLS.get(policy.podSecurity.control, ()))
    ids |= {
        check.id
        for check in CHECKS
        for version in check.versions
        if ids.intersection(version.overrides)
    }
    return frozenset(ids)


class Judge:
    """Knows what must happen (from the catalog, the fleet and the scenarios) and who caused
    what happened (from the rendered resources and the PSS checks)."""

    def __init__(self, catalog: Catalog, plans: Sequence[ClusterPlan]) -> None:
        self.catalog = catalog
        self._names: dict[tuple[str, str], dict[str, str]] = {}
        for plan in plans:
            for target in plan.targets:
                self._names[(plan.name, target)] = {
                    str(doc.body["metadata"]["name"]): policy
                    for doc in TARGETS[target].render(plan)
                    if (
                        policy := (doc.body["metadata"].get("annotations") or {}).get(
                            "polgen.dev/policy"
                        )
                    )
                }
        self._pss = {p.id: pss_checks(p) for p in catalog.policies}

    def attribute(self, cluster: str, target: str, violation: Violation) -> tuple[str, ...]:
        """The catalog policies a violation stands for (none when unknown)."""
        policy = self._names.get((cluster, target), {}).get(violation.policy)
        if policy:
            return (policy,)
        checks = {c.strip() for c in (violation.rule or "").split(",")}
        return tuple(sorted(p for p, ids in self._pss.items() if ids & checks))

    def _covered(
        self, plan: ClusterPlan, target: str, namespace: str, policy_id: str, result: Result
    ) -> bool:
        policy = self.catalog.get(policy_id)
        if result == "admitted":
            return False
        if target == PSA:
            mode = _PSA_MODE.get(result)
            return mode is not None and _psa_covers(plan, namespace, policy, mode)
        binding = binding_for(plan, policy_id, namespace)
        return (
            TARGETS[target].support(policy).supported
            and binding is not None
            and binding.action != "audit"
        )

    def expectation(self, case: Case, plan: ClusterPlan, target: str) -> Expectation | None:
        """What must happen to the case in this target of this cluster (None: not judged)."""
        namespace = case.request.namespace
        if case.scenario is not None:
            scenario = case.scenario.scenario
            result = scenario.expect.outcome(target)
            flagged = tuple(
                p for p in scenario.catches if self._covered(plan, target, namespace, p, result)
            )
            return Expectation(result, flagged, scenario.expect.reasons.get(target, ""))
        if case.fixture is None:
            return None
        policy_id, verdict = case.fixture
        policy = self.catalog.get(policy_id)
        if target == PSA:
            # PSA judges whole levels: an allowed fixture may still fail another control.
            if verdict == "allowed":
                return None
            is_pod = case.request.kind == "Pod"
            if is_pod and _psa_covers(plan, namespace, policy, "enforce"):
                return Expectation("denied", (policy_id,))
            if _psa_covers(plan, namespace, policy, "warn"):
                return Expectation("warned", (policy_id,))
            return None
        binding = binding_for(plan, policy_id, namespace)
        if binding is None or not TARGETS[target].support(policy).supported:
            return None
        if target == KYVERNO and KYVERNO_INSTALL_FILTERS.skips(
            KyvernoRequest.from_admission(case.request, None)
        ):
            # A default Kyverno install never reviews this request (resourceFilters such as
            # [ReplicaSet,*,*]); its Pods are reviewed when they are created.
            return None
        if verdict == "allowed":
            return Expectation("admitted")
        result = _BY_ACTION[binding.action]
        return Expectation(result, (policy_id,) if result != "admitted" else ())

    def outcome(
        self, runner: str, case: Case, plan: ClusterPlan, target: str, verdict: Verdict | None
    ) -> Outcome:
        expectation = self.expectation(case, plan, target)
        if verdict is None:
            return Outcome(
                runner,
                case,
                plan.name,
                target,
                None,
                (),
                (),
                expectation,
                ("the runner returned no result",),
            )
        result = result_of(verdict)
        action = _ACTION_OF.get(result)
        policies = sorted(
            {
                p
                for v in verdict.violations
                if v.action == action
                for p in self.attribute(plan.name, target, v)
            }
        )
        problems = []
        if expectation is not None:
            if expectation.result != result:
                problems.append(f"expected {expectation.result}, got {result}")
            verb = "warn about" if expectation.result == "warned" else "deny"
            problems.extend(
                f"expected {p} to {verb} it" for p in expectation.flagged_by if p not in policies
            )
        return Outcome(
            runner,
            case,
            plan.name,
            target,
            result,
            tuple(policies),
            verdict.violations,
            expectation,
            tuple(problems),
        )


def result_of(verdict: Verdict) -> Result:
    """denied if any violation denies, warned if any warns, admitted otherwise (audit only)."""
    actions = {v.action for v in verdict.violations}
    return "denied" if "deny" in actions else ("warned" if "warn" in actions else "admitted")


def judge(
    runner: str,
    catalog: Catalog,
    plans: Sequence[ClusterPlan],
    cases: Sequence[Case],
    observations: Sequence[Observation],
) -> list[Outcome]:
    """Every case x plan x target judged, in case then cluster then target order."""
    seen = {(o.case, o.cluster, o.target): o.verdict for o in observations}
    judge_ = Judge(catalog, plans)
    return [
        judge_.outcome(runner, case, plan, target, seen.get((case.id, plan.name, target)))
        for case in cases
        for plan in plans
        for target in plan.targets
    ]


def run_cases(
    runner: Runner, catalog: Catalog, plans: Sequence[ClusterPlan], cases: Sequence[Case]
) -> list[Outcome]:
    """Run the cases with one runner and judge what it saw."""
    return judge(runner.name, catalog, plans, cases, runner.run(plans, cases))


@dataclass(frozen=True)
class Disagreement:
    """A case whose result differs between two runners."""

    case: str
    cluster: str
    target: str
    results: tuple[tuple[str, Result | None], tuple[str, Result | None]]


def agreement(left: Sequence[Outcome], right: Sequence[Outcome]) -> list[Disagreement]:
    """Every case x cluster x target where two runners' results differ (or one has none)."""

    def index(outcomes: Sequence[Outcome]) -> dict[tuple[str, str, str], Outcome]:
        return {(o.case.id, o.cluster, o.target): o for o in outcomes}

    a, b = index(left), index(right)
    a_name = left[0].runner if left else "left"
    b_name = right[0].runner if right else "right"
    found = []
    for key in sorted(set(a) | set(b)):
        ra = a[key].result if key in a else None
        rb = b[key].result if key in b else None
        if ra != rb:
            found.append(Disagreement(*key, ((a_name, ra), (b_name, rb))))
    return found
