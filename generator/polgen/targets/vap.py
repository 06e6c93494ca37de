"""Kubernetes ValidatingAdmissionPolicy: a policy and a binding per polgen binding.

Parameters are inlined as CEL literals instead of a `paramKind`, so the policies need no
parameter CRD or objects and work from cluster bootstrap. The CEL comes from the check library in
`templates/cel/`, shared with the Kyverno ValidatingPolicy flavour and Gatekeeper's CEL.
"""

from __future__ import annotations

from polgen.catalog import Policy
from polgen.plan import ClusterPlan
from polgen.targets.base import Document, Support, render_document
from polgen.targets.cel_code import inline_values, unsupported_reason

SUBJECT_SCOPES: dict[str, str] = {
    "pod": "Pods, pods/ephemeralcontainers and every pod controller",
    "service": "Services",
}


class ValidatingAdmissionPolicyTarget:
    name = "vap"
    summary = (
        "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies (CEL, parameters inlined)"
        " and their bindings"
    )
    minimum_versions = "Kubernetes >= 1.30 (ValidatingAdmissionPolicy v1 GA, CEL optional types)"

    def support(self, policy: Policy) -> Support:
        reason = unsupported_reason(policy)
        if reason:
            return Support(False, reason)
        return Support(True, f"evaluated in the API server for {SUBJECT_SCOPES[policy.subject]}")

    def render(self, plan: ClusterPlan) -> list[Document]:
        documents = []
        for binding in plan.bindings:
            mode = inline_values(binding)
            for kind in ("validatingadmissionpolicy", "validatingadmissionpolicybinding"):
                body = render_document(f"vap/{kind}.yaml.j2", binding=binding, mode=mode)
                documents.append(Document(f"{kind}-{binding.name}.yaml", body))
        return documents


TARGET = ValidatingAdmissionPolicyTarget()
