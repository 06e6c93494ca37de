"""The Kyverno ValidatingPolicy flavour (policies.kyverno.io/v1): one CEL policy per binding.

Only the kyverno target imports this module. The CEL comes from the check library in
`templates/cel/`, shared with the vap target; Kyverno evaluates it as plain CEL without `{{ }}`
substitution, so no Kyverno escaping applies.
"""

from __future__ import annotations

from polgen.plan import ClusterPlan
from polgen.targets.base import Document, render_document
from polgen.targets.cel_code import inline_values

MINIMUM_VERSION = "Kyverno >= 1.17 (policies.kyverno.io/v1 ValidatingPolicy)"


def render_validating_policies(plan: ClusterPlan) -> list[Document]:
    """A ValidatingPolicy per binding, scoped to the binding's namespaces."""
    return [
        Document(
            f"validatingpolicy-{binding.name}.yaml",
            render_document(
                "kyverno/validatingpolicy.yaml.j2", binding=binding, mode=inline_values(binding)
            ),
        )
        for binding in plan.bindings
    ]
