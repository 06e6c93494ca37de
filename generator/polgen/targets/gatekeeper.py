"""OPA Gatekeeper: a Rego ConstraintTemplate per policy, a Constraint per binding, and
ExpansionTemplates so workloads are judged at admission by the Pods they would create.

The Rego reads every parameter from the Constraint (`input.parameters`), so one template serves
every binding of a policy; bindings differ only in their Constraints. Per cluster the template
can also carry the CEL of the policy (K8sNativeValidation) and can fall back to Rego v0 in the
legacy `rego` field for Gatekeeper 3.14-3.18.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polgen.catalog import Policy
from polgen.fleet import GatekeeperSettings
from polgen.plan import Binding, ClusterPlan
from polgen.resources import templates_dir
from polgen.targets.base import Document, Support, render_document, render_text
from polgen.targets.cel_code import gatekeeper_native_validation, unsupported_reason

EXEMPT_IMAGES = "exemptImages"
"""The Constraint parameter listing exempt images, declared by templates with container checks."""

ENFORCEMENT_ACTIONS: dict[str, str] = {"enforce": "deny", "warn": "warn", "audit": "dryrun"}

SUBJECT_KINDS: dict[str, list[dict[str, list[str]]]] = {
    "pod": [{"apiGroups": [""], "kinds": ["Pod"]}],
    "service": [{"apiGroups": [""], "kinds": ["Service"]}],
}
"""What a Constraint matches per policy subject (workloads reach Pod Constraints as Pods)."""

REGO_HELPERS: dict[str, tuple[str, ...]] = {
    "pod-field": ("value-rule",),
    "container-field": ("containers", "value-rule"),
    "pod-and-container-field": ("containers", "value-rule"),
    "container-list-subset": ("containers",),
    "container-list-contains": ("containers",),
    "container-list-range": ("containers", "range"),
    "pod-list-field": (),
    "pod-list-keys": (),
    "pod-annotation": ("annotation",),
    "pod-labels": ("labels",),
    "image-repository": ("containers", "image-repository"),
    "image-tag": ("containers", "image-tag"),
    "image-digest": ("containers", "image-tag"),
    "namespace": ("namespace",),
    "service-field": ("value-rule",),
}
"""The check kinds with a Rego template (`templates/gatekeeper/checks/<kind>.rego.j2`) and the
shared Rego each needs (`templates/gatekeeper/lib/<name>.rego.j2`)."""

_EXEMPT_IMAGES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Containers whose image equals an entry, or starts with an entry ending in"
    " '*' without the '*', are not checked.",
    "items": {"type": "string"},
}


@dataclass(frozen=True)
class Expansion:
    """One ExpansionTemplate: which workloads it expands, from where, into what."""

    name: str
    apply_to: tuple[dict[str, list[str]], ...]
    template_source: str
    generated_gvk: dict[str, str]


EXPANSIONS: tuple[Expansion, ...] = (
    Expansion(
        name="polgen-pod-controllers",
        apply_to=(
            {
                "groups": ["apps"],
                "kinds": ["DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"],
                "versions": ["v1"],
            },
            {"groups": ["batch"], "kinds": ["Job"], "versions": ["v1"]},
            {"groups": [""], "kinds": ["ReplicationController"], "versions": ["v1"]},
        ),
        template_source="spec.template",
        generated_gvk={"group": "", "version": "v1", "kind": "Pod"},
    ),
    # A CronJob's pod template sits one level deeper; its Job is expanded again by the first.
    Expansion(
        name="polgen-cronjobs",
        apply_to=({"groups": ["batch"], "kinds": ["CronJob"], "versions": ["v1"]},),
        template_source="spec.jobTemplate",
        generated_gvk={"group": "batch", "version": "v1", "kind": "Job"},
    ),
)


def constraint_kind(policy_id: str) -> str:
    """`disallow-privileged` -> `PolgenDisallowPrivileged`; the prefix avoids clashing with
    gatekeeper-library kinds installed beside ours."""
    return "Polgen" + "".join(part[:1].upper() + part[1:] for part in policy_id.split("-"))


def has_container_checks(policy: Policy) -> bool:
    """Container checks honour image exemptions, so their templates declare `exemptImages`."""
    return any("containerTypes" in type(check).model_fields for check in policy.checks)


def parameter_schema(policy: Policy) -> dict[str, Any]:
    """The Constraint's `spec.parameters` schema: the policy's parameters (value parameters and
    the booleans that switch skipIf relaxations) and `exemptImages`."""
    properties = {name: param.openapi_schema() for name, param in sorted(policy.parameters.items())}
    if has_container_checks(policy):
        properties[EXEMPT_IMAGES] = _EXEMPT_IMAGES_SCHEMA
    return properties


def rego_module(policy: Policy, legacy: bool = False) -> str:
    """The policy's Rego module, one rule per check rendered from its check-kind template.

    `legacy` gives Rego v0 for the `rego` field of Gatekeeper 3.14-3.18: the same rules with the
    future keywords imported, so both versions judge every request alike.
    """
    libs = {lib for check in policy.checks for lib in REGO_HELPERS[check.kind]}
    if any(getattr(check, "skipIf", []) for check in policy.checks):
        libs.add("skip")
    return render_text(
        "gatekeeper/module.rego.j2",
        package=constraint_kind(policy.id).lower(),
        policy_id=policy.id,
        legacy=legacy,
        libs=sorted(libs),
        checks=[{**check.model_dump(), "mutable": check.mutable} for check in policy.checks],
    )


def template_targets(policy: Policy, settings: GatekeeperSettings) -> dict[str, Any]:
    """The ConstraintTemplate's one target: Rego v1 under `code[]` (or v0 under the legacy
    `rego` field), after the CEL when native validation is on and the CEL library can express
    the policy (Gatekeeper then runs only the CEL; the Rego serves clusters that disable it)."""
    target: dict[str, Any] = {"target": "admission.k8s.gatekeeper.sh"}
    code: list[dict[str, Any]] = []
    if settings.nativeValidation and unsupported_reason(policy) is None:
        source = gatekeeper_native_validation(policy)
        code.append({"engine": "K8sNativeValidation", "source": source})
    if settings.legacyRego:
        target["rego"] = rego_module(policy, legacy=True)
    else:
        code.append({"engine": "Rego", "source": {"version": "v1", "rego": rego_module(policy)}})
    if code:
        target["code"] = code
    return target


def constraint_parameters(binding: Binding) -> dict[str, Any]:
    """What the Rego reads as `input.parameters` for this binding."""
    parameters = dict(sorted(binding.parameters.items()))
    if has_container_checks(binding.policy):
        parameters[EXEMPT_IMAGES] = list(binding.exempt_images)
    return parameters


class GatekeeperTarget:
    name = "gatekeeper"
    summary = (
        "Rego ConstraintTemplates and Constraints, plus ExpansionTemplates that judge workloads"
        " by their Pods; optionally CEL (K8sNativeValidation) and legacy Rego v0"
    )
    minimum_versions = (
        "Gatekeeper >= 3.19 (Rego v1 under targets[].code[].source.version); with"
        " gatekeeper.legacyRego >= 3.14 (Rego v0 with future keywords in targets[].rego);"
        " gatekeeper.nativeValidation needs the K8sNativeValidation engine (>= 3.16, on by"
        " default from 3.17); ExpansionTemplate expansion.gatekeeper.sh/v1beta1 needs >= 3.13"
    )

    def support(self, policy: Policy) -> Support:
        checks_dir = templates_dir() / "gatekeeper" / "checks"
        missing = sorted(
            kind
            for kind in {check.kind for check in policy.checks}
            if kind not in REGO_HELPERS or not (checks_dir / f"{kind}.rego.j2").is_file()
        )
        if missing:
            return Support(False, f"no Rego template for check kind {', '.join(missing)}")
        reason = (
            "Rego ConstraintTemplate evaluated by the validation webhook on Services"
            if policy.subject == "service"
            else "Rego ConstraintTemplate evaluated by the validation webhook; workloads through"
            " ExpansionTemplates"
        )
        no_cel = unsupported_reason(policy)
        if no_cel:
            return Support(True, f"{reason}; no CEL with gatekeeper.nativeValidation ({no_cel})")
        return Support(True, f"{reason}; with gatekeeper.nativeValidation also K8sNativeValidation")

    def render(self, plan: ClusterPlan) -> list[Document]:
        documents = [self._template(policy, plan.gatekeeper) for policy in plan.policies()]
        documents.extend(self._constraint(binding) for binding in plan.bindings)
        if any(binding.policy.subject == "pod" for binding in plan.bindings):
            documents.extend(self._expansion(expansion) for expansion in EXPANSIONS)
        return documents

    def _template(self, policy: Policy, settings: GatekeeperSettings) -> Document:
        kind = constraint_kind(policy.id)
        body = render_document(
            "gatekeeper/constrainttemplate.yaml.j2",
            name=kind.lower(),
            kind=kind,
            policy=policy,
            properties=parameter_schema(policy),
            target=template_targets(policy, settings),
        )
        return Document(f"constrainttemplate-{policy.id}.yaml", body)

    def _constraint(self, binding: Binding) -> Document:
        body = render_document(
            "gatekeeper/constraint.yaml.j2",
            kind=constraint_kind(binding.policy.id),
            binding=binding,
            match_kinds=SUBJECT_KINDS[binding.policy.subject],
            enforcement_action=ENFORCEMENT_ACTIONS[binding.action],
            parameters=constraint_parameters(binding),
        )
        return Document(f"constraint-{binding.name}.yaml", body)

    def _expansion(self, expansion: Expansion) -> Document:
        body = render_document(
            "gatekeeper/expansiontemplate.yaml.j2",
            name=expansion.name,
            apply_to=list(expansion.apply_to),
            template_source=expansion.template_source,
            generated_gvk=expansion.generated_gvk,
        )
        return Document(f"expansiontemplate-{expansion.name}.yaml", body)


TARGET = GatekeeperTarget()
