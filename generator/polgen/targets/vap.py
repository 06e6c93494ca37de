"""Kubernetes ValidatingAdmissionPolicy: a policy and a binding per polgen binding.

Parameters are inlined as CEL literals instead of a `paramKind`, so the policies need no
parameter CRD or objects and work from cluster bootstrap. The CEL comes from the check library in
`templates/cel/`, shared with the Kyverno ValidatingPolicy flavour.
"""

from __future__ import annotations

from polgen.catalog import Policy
from polgen.checks import CHECK_KINDS
from polgen.plan import ClusterPlan
from polgen.targets.base import Document, Support, render_document


class ValidatingAdmissionPolicyTarget:
    name = "vap"
    summary = (
        "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies (CEL, parameters inlined)"
        " and their bindings"
    )
    minimum_versions = "Kubernetes >= 1.30 (ValidatingAdmissionPolicy v1 GA, CEL optional types)"

    def support(self, policy: Policy) -> Support:
        unknown = sorted({check.kind for check in policy.checks} - set(CHECK_KINDS))
        if unknown:
            return Support(False, f"no CEL template for check kind {', '.join(unknown)}")
        return Support(
            True,
            "evaluated in the API server for Pods, pods/ephemeralcontainers and every pod"
            " controller",
        )

    def render(self, plan: ClusterPlan) -> list[Document]:
        documents = []
        for binding in plan.bindings:
            for kind in ("validatingadmissionpolicy", "validatingadmissionpolicybinding"):
                body = render_document(f"vap/{kind}.yaml.j2", binding=binding)
                documents.append(Document(f"{kind}-{binding.name}.yaml", body))
        return documents


TARGET = ValidatingAdmissionPolicyTarget()
