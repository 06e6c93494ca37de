"""The registry of targets: a new engine is one module, one template folder, one line here."""

from __future__ import annotations

from polgen.targets import gatekeeper, kyverno, psa, vap
from polgen.targets.base import Document, Support, Target

TARGETS: dict[str, Target] = {
    "gatekeeper": gatekeeper.TARGET,
    "kyverno": kyverno.TARGET,
    "psa": psa.TARGET,
    "vap": vap.TARGET,
}

__all__ = ["TARGETS", "Document", "Support", "Target"]
