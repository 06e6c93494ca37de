"""OPA Gatekeeper: a Rego v1 ConstraintTemplate per policy, a Constraint per binding, and
ExpansionTemplates so workloads are judged at admission by the Pods they would create.

The Rego reads every parameter from the Constraint (`input.parameters`), so one template serves
every binding of a policy; bindings differ only in their Constraints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polgen.catalog import Policy
from polgen.checks import CHECK_KINDS
from polgen.plan import Binding, ClusterPlan
from polgen.targets.base import Document, Support, render_document, render_text

EXEMPT_IMAGES = "exemptImages"
"""The Constraint parameter listing exempt images, declared by templates with container checks."""

ENFORCEMENT_ACTIONS: dict[str, str] = {"enforce": "deny", "warn": "warn", "audit": "dryrun"}

_CONTAINER_CHECKS = frozenset({"container-field", "container-list-subset", "image-repository"})
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
    return any(check.kind in _CONTAINER_CHECKS for check in policy.checks)


def parameter_schema(policy: Policy) -> dict[str, Any]:
    """The Constraint's `spec.parameters` schema: the policy's parameters and `exemptImages`."""
    properties = {name: param.openapi_schema() for name, param in sorted(policy.parameters.items())}
    if has_container_checks(policy):
        properties[EXEMPT_IMAGES] = _EXEMPT_IMAGES_SCHEMA
    return properties


def rego_module(policy: Policy) -> str:
    """The policy's Rego v1 module, one rule per check rendered from its check-kind template."""
    kinds = {check.kind for check in policy.checks}
    return render_text(
        "gatekeeper/module.rego.j2",
        package=constraint_kind(policy.id).lower(),
        policy_id=policy.id,
        checks=[check.model_dump() for check in policy.checks],
        container_checks=has_container_checks(policy),
        image_checks="image-repository" in kinds,
    )


def constraint_parameters(binding: Binding) -> dict[str, Any]:
    """What the Rego reads as `input.parameters` for this binding."""
    parameters = dict(sorted(binding.parameters.items()))
    if has_container_checks(binding.policy):
        parameters[EXEMPT_IMAGES] = list(binding.exempt_images)
    return parameters


class GatekeeperTarget:
    name = "gatekeeper"
    summary = (
        "Rego v1 ConstraintTemplates and Constraints, plus ExpansionTemplates that judge"
        " workloads by their Pods"
    )
    minimum_versions = (
        "Gatekeeper >= 3.19 (Rego v1 under targets[].code[].source.version);"
        " ExpansionTemplate expansion.gatekeeper.sh/v1beta1 needs >= 3.13 (beta, on by default)"
    )

    def support(self, policy: Policy) -> Support:
        unknown = sorted({c.kind for c in policy.checks} - set(CHECK_KINDS))
        if unknown:
            return Support(False, f"no Rego template for check kind {', '.join(unknown)}")
        return Support(
            True,
            "Rego v1 ConstraintTemplate evaluated by the validation webhook; workloads through"
            " ExpansionTemplates",
        )

    def render(self, plan: ClusterPlan) -> list[Document]:
        documents = [self._template(policy) for policy in plan.policies()]
        documents.extend(self._constraint(binding) for binding in plan.bindings)
        if plan.bindings:
            documents.extend(self._expansion(expansion) for expansion in EXPANSIONS)
        return documents

    def _template(self, policy: Policy) -> Document:
        kind = constraint_kind(policy.id)
        body = render_document(
            "gatekeeper/constrainttemplate.yaml.j2",
            name=kind.lower(),
            kind=kind,
            policy=policy,
            properties=parameter_schema(policy),
            rego=rego_module(policy),
        )
        return Document(f"constrainttemplate-{policy.id}.yaml", body)

    def _constraint(self, binding: Binding) -> Document:
        body = render_document(
            "gatekeeper/constraint.yaml.j2",
            kind=constraint_kind(binding.policy.id),
            binding=binding,
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
