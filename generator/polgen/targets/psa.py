"""Pod Security Admission: namespace labels choosing a Pod Security Standards level per mode."""

from __future__ import annotations

from polgen.catalog import Policy
from polgen.plan import ClusterPlan
from polgen.targets.base import Document, Support, render_document

_MODES = ("enforce", "audit", "warn")


class PodSecurityAdmissionTarget:
    name = "psa"
    summary = "Namespace manifests with pod-security.kubernetes.io/{enforce,audit,warn} labels"
    minimum_versions = "Kubernetes >= 1.25 (PodSecurity admission GA)"

    def support(self, policy: Policy) -> Support:
        if policy.podSecurity is None:
            return Support(
                False, "not a Pod Security Standards control; PSA only enforces whole levels"
            )
        return Support(True, f"covered by level {policy.podSecurity.level} and above")

    def render(self, plan: ClusterPlan) -> list[Document]:
        documents = []
        for entry in plan.namespaces:
            modes = [
                (mode, getattr(entry.labels, mode), getattr(entry.labels, f"{mode}Version"))
                for mode in _MODES
                if getattr(entry.labels, mode) is not None
            ]
            body = render_document(
                "psa/namespace.yaml.j2", namespace=entry.namespace, group=entry.group, modes=modes
            )
            documents.append(Document(f"namespace-{entry.namespace}.yaml", body))
        return documents


TARGET = PodSecurityAdmissionTarget()
