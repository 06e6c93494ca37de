"""`polgen export-tests`: each cluster's rendered policies with engine-native test suites, so the
fixtures and scenarios also run under upstream tools (`gator verify`, `kyverno test`).

What each case must do is decided by `polgen.semantics` (the reference semantics of the check
kinds) for the binding that selects the case's namespace, never by the engines under test.

Layout (`<out>/<cluster>/...`):
- `gatekeeper/<policy>/suite.yaml` (`test.gatekeeper.sh/v1alpha1` Suite) beside copies of the
  ConstraintTemplate, the Constraints and the pod-controller ExpansionTemplate, and
  `cases/<case>.yaml`. A CREATE is the object itself; `kubectl debug` (any UPDATE) is an
  AdmissionReview. Workloads run in a second test per binding with `expansion:`; as a test takes
  one ExpansionTemplate, a CronJob case is the Job polgen's CronJob ExpansionTemplate makes of it.
- `kyverno/<policy>/kyverno-test.yaml` (`cli.kyverno.io/v1alpha1` Test) beside a copy of the
  ClusterPolicy or ValidatingPolicy and `resources.yaml`: one result per rule (autogen rule names
  for workloads) or, for a ValidatingPolicy, per policy. CREATE cases only: the CLI cannot send
  the `pods/ephemeralcontainers` subresource. Kyverno reports nothing for a rule that does not
  apply (a `foreach` over an empty list): polgen's Kyverno engine says which rules report.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from polgen import yamlio
from polgen.admission import AdmissionRequest
from polgen.engines import kyverno, kyverno_validating
from polgen.engines.gatekeeper_expansion import expand, parse_expansion
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.errors import PolgenError
from polgen.harness import Case, binding_for
from polgen.output import render_target
from polgen.plan import Binding, ClusterPlan
from polgen.semantics import POD_SPEC_PATHS, evaluate_policy
from polgen.targets import TARGETS

SUITE_API = "test.gatekeeper.sh/v1alpha1"
KYVERNO_TEST_API = "cli.kyverno.io/v1alpha1"
POD_EXPANSION = "expansiontemplate-polgen-pod-controllers.yaml"
CRONJOB_EXPANSION = "expansiontemplate-polgen-cronjobs.yaml"
README = """# Engine-native tests exported by `polgen export-tests`

    gator verify <cluster>/gatekeeper/...     # Gatekeeper >= 3.19 gator with suite `expansion:`
    kyverno test <cluster>/kyverno            # Kyverno CLI >= 1.18 (checks `fail` results)

Every folder holds copies of the rendered policies it tests; `polgen test` runs the same cases
(and more: Pod Security, ValidatingAdmissionPolicy, `kubectl debug` for Kyverno) offline.
"""


@dataclass(frozen=True)
class ExportCase:
    """A case as exported for one policy: a file-safe name and the binding that judges it."""

    slug: str
    case: Case
    binding: Binding
    request: AdmissionRequest

    @property
    def plain(self) -> bool:
        """A CREATE without subresource: exportable as a plain object."""
        return self.request.operation == "CREATE" and not self.request.sub_resource

    @property
    def obj(self) -> dict[str, Any]:
        assert self.request.object is not None
        return self.request.object


def _slug(case: Case) -> str:
    if case.fixture is not None:
        return f"{case.fixture[1]}-{case.id.rsplit('/', 1)[1]}"
    return case.id.replace("/", "-")


def _renamed(request: AdmissionRequest, name: str) -> AdmissionRequest:
    """The request with the object (and old object) renamed, so names are unique per suite."""

    def rename(obj: dict[str, Any] | None) -> dict[str, Any] | None:
        if obj is None:
            return None
        renamed = copy.deepcopy(obj)
        renamed.setdefault("metadata", {})["name"] = name
        return renamed

    return dataclasses.replace(
        request, name=name, object=rename(request.object), old_object=rename(request.old_object)
    )


def relevant(policy_id: str, case: Case) -> bool:
    """The policy's own fixtures, the scenarios that must be caught by it, benign scenarios."""
    if case.fixture is not None:
        return case.fixture[0] == policy_id
    if case.scenario is None:
        return False
    scenario = case.scenario.scenario
    return scenario.category == "benign" or policy_id in scenario.catches


def export_cases(plan: ClusterPlan, policy_id: str, cases: Sequence[Case]) -> list[ExportCase]:
    """The relevant cases whose namespace a binding of the policy selects, in case order."""
    found = []
    for case in cases:
        binding = binding_for(plan, policy_id, case.request.namespace)
        if binding is None or not relevant(policy_id, case) or case.request.object is None:
            continue
        slug = _slug(case)
        found.append(ExportCase(slug, case, binding, _renamed(case.request, slug)))
    return found


def violates(binding: Binding, request: AdmissionRequest, check_index: int | None = None) -> bool:
    """The reference verdict: does the request violate the binding (or one of its checks)?"""
    policy = binding.policy
    if check_index is not None:
        policy = policy.model_copy(update={"checks": [policy.checks[check_index]]})
    return bool(evaluate_policy(policy, binding.parameters, request, binding.exempt_images))


def _parsed(text: str) -> dict[str, Any]:
    """One rendered document, parsed back (libyaml when available)."""
    document: dict[str, Any] = next(yamlio.load_all(text))
    return document


def _bindings(items: Sequence[ExportCase]) -> list[Binding]:
    """The bindings of the items, each once, in first-seen order."""
    return list({item.binding.name: item.binding for item in items}.values())


def _dump_all(documents: Sequence[dict[str, Any]]) -> str:
    return "---\n".join(yamlio.dump(document) for document in documents)


def _review(request: AdmissionRequest) -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview; a JSON round trip so no YAML aliases appear."""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request.to_review(),
    }
    loaded: dict[str, Any] = json.loads(json.dumps(review))
    return loaded


def _as_job(cronjob: dict[str, Any], rendered: dict[str, str]) -> dict[str, Any]:
    """The Job polgen's CronJob ExpansionTemplate generates (Gatekeeper expands it further)."""
    template = parse_expansion(CRONJOB_EXPANSION, _parsed(rendered[CRONJOB_EXPANSION]))
    namespace = str(cronjob["metadata"].get("namespace") or "")
    job = expand([template], cronjob, namespace)[-1].object
    head = {key: job.pop(key) for key in ("apiVersion", "kind", "metadata")}
    return {**head, **job}


def gatekeeper_files(
    plan: ClusterPlan, policy_id: str, items: Sequence[ExportCase], rendered: dict[str, str]
) -> dict[str, str]:
    """One policy's suite, policy copies and case objects, relative to the cluster folder."""
    folder = f"gatekeeper/{policy_id}"
    template = f"constrainttemplate-{policy_id}.yaml"
    if template not in rendered:  # the target cannot express this policy
        return {}
    files = {f"{folder}/{template}": rendered[template]}
    workloads_ok = POD_EXPANSION in rendered and CRONJOB_EXPANSION in rendered
    tests: list[dict[str, Any]] = []
    for binding in _bindings(items):
        constraint = f"constraint-{binding.name}.yaml"
        files[f"{folder}/{constraint}"] = rendered[constraint]
        direct: list[dict[str, Any]] = []
        workloads: list[dict[str, Any]] = []
        for item in (i for i in items if i.binding.name == binding.name):
            if _workload(item.request.kind) and not workloads_ok:
                continue
            obj = item.obj if item.plain else _review(item.request)
            if item.request.kind == "CronJob":
                obj = _as_job(item.obj, rendered)
            path = f"cases/{item.slug}.yaml"
            files[f"{folder}/{path}"] = yamlio.dump(obj)
            verdict = "yes" if violates(binding, item.request) else "no"
            entry = {"name": item.slug, "object": path, "assertions": [{"violations": verdict}]}
            (workloads if _workload(item.request.kind) else direct).append(entry)
        base = {"template": template, "constraint": constraint}
        if direct:
            tests.append({"name": binding.name, **base, "cases": direct})
        if workloads:
            files[f"{folder}/{POD_EXPANSION}"] = rendered[POD_EXPANSION]
            tests.append(
                {
                    "name": f"{binding.name}-workloads",
                    **base,
                    "expansion": POD_EXPANSION,
                    "cases": workloads,
                }
            )
    suite = {
        "kind": "Suite",
        "apiVersion": SUITE_API,
        "metadata": {"name": policy_id},
        "tests": tests,
    }
    files[f"{folder}/suite.yaml"] = yamlio.dump(suite)
    return files


def _workload(kind: str) -> bool:
    """A pod controller: Gatekeeper reviews the Pod it expands to, Kyverno an autogen rule."""
    return kind in POD_SPEC_PATHS and kind != "Pod"


def rule_name(rule: str, kind: str) -> str:
    """The rule Kyverno reports for a kind: the rule itself, or a pod controller's autogen copy."""
    if not _workload(kind):
        return rule
    return f"autogen-cronjob-{rule}"[:63] if kind == "CronJob" else f"autogen-{rule}"[:63]


def _kyverno_policy(binding: Binding, rendered: dict[str, str]) -> tuple[str, dict[str, Any]]:
    for prefix in ("clusterpolicy", "validatingpolicy"):
        name = f"{prefix}-{binding.name}.yaml"
        if name in rendered:
            return name, _parsed(rendered[name])
    raise PolgenError.single(f"{binding.cluster}/kyverno", f"no policy for binding {binding.name}")


def _responder(document: dict[str, Any]) -> Callable[[AdmissionRequest], dict[str, str]]:
    """Which rules (or, for a ValidatingPolicy, the policy) Kyverno reports anything for, and
    `skip` where it skips: asked of polgen's Kyverno engines. A rule with nothing to apply to (a
    `foreach` over an empty list) gets no result at all, so none may be asserted for it."""
    if document["kind"] == "ValidatingPolicy":
        vpol = kyverno_validating.ENGINE.load([("policy", document)])
        return lambda request: {r.policy: r.status for r in vpol.results(request, None)}
    policy_set = kyverno.ENGINE.load([("policy", document)])
    return lambda request: {
        r.rule: r.status for r in policy_set.results(KyvernoRequest.from_admission(request))
    }


def _kyverno_results(
    document: dict[str, Any], binding: Binding, items: Sequence[ExportCase]
) -> list[dict[str, Any]]:
    """Results grouped by rule, kind and result: `fail` or `pass` by the reference semantics
    for every rule Kyverno reports on, `skip` where it skips a rule that is not violated."""
    name = document["metadata"]["name"]
    vpol = document["kind"] == "ValidatingPolicy"
    rules = [] if vpol else [str(rule["name"]) for rule in document["spec"]["rules"]]
    if not vpol and len(rules) != len(binding.policy.checks):
        raise PolgenError.single(
            name,
            f"{len(rules)} rules for {len(binding.policy.checks)} checks: cannot tell which"
            " rule implements which check",
        )
    grouped: dict[tuple[str | None, str, str], list[str]] = {}
    responses_to = _responder(document)
    for item in items:
        responses = responses_to(item.request)
        kind = item.request.kind
        targets = (
            [(None, name, None)]
            if vpol
            else [
                (rule_name(rule, kind), rule_name(rule, kind), index)
                for index, rule in enumerate(rules)
            ]
        )
        for rule, key, index in targets:
            reported = responses.get(key)
            if reported is None:
                continue
            verdict = "fail" if violates(binding, item.request, index) else "pass"
            # A skip stands only where nothing is violated: a skipped violation must show.
            if reported == "skip" and verdict == "pass":
                verdict = "skip"
            grouped.setdefault((rule, kind, verdict), []).append(item.slug)
    results = []
    for (rule, kind, status), resources in grouped.items():
        entry: dict[str, Any] = {"policy": name}
        if rule is None:
            entry["isValidatingPolicy"] = True
        else:
            entry["rule"] = rule
        entry.update({"kind": kind, "resources": resources, "result": status})
        results.append(entry)
    return results


def kyverno_files(
    policy_id: str, items: Sequence[ExportCase], rendered: dict[str, str]
) -> dict[str, str]:
    """One policy's kyverno-test.yaml, policy copies and resources."""
    folder = f"kyverno/{policy_id}"
    plain = [item for item in items if item.plain]
    if not plain:
        return {}
    files: dict[str, str] = {}
    policies, results = [], []
    for binding in _bindings(plain):
        file, document = _kyverno_policy(binding, rendered)
        files[f"{folder}/{file}"] = rendered[file]
        policies.append(file)
        results.extend(
            _kyverno_results(
                document, binding, [i for i in plain if i.binding.name == binding.name]
            )
        )
    reported = {name for result in results for name in result["resources"]}
    files[f"{folder}/resources.yaml"] = _dump_all([i.obj for i in plain if i.slug in reported])
    test = {
        "apiVersion": KYVERNO_TEST_API,
        "kind": "Test",
        "metadata": {"name": policy_id},
        "policies": policies,
        "resources": ["resources.yaml"],
        "results": results,
    }
    files[f"{folder}/kyverno-test.yaml"] = yamlio.dump(test)
    return files


def export_tree(plans: Sequence[ClusterPlan], cases: Sequence[Case]) -> dict[str, str]:
    """Every exported file, keyed by path relative to the output folder, in sorted order."""
    tree = {"README.md": README}
    for plan in plans:
        for target in ("gatekeeper", "kyverno"):
            if target not in plan.targets:
                continue
            rendered = render_target(plan, TARGETS[target])
            for policy in plan.policies():
                items = export_cases(plan, policy.id, cases)
                if not items:
                    continue
                files = (
                    gatekeeper_files(plan, policy.id, items, rendered)
                    if target == "gatekeeper"
                    else kyverno_files(policy.id, items, rendered)
                )
                tree.update({f"{plan.name}/{path}": text for path, text in files.items()})
    return dict(sorted(tree.items()))
