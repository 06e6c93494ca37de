"""The registry of targets: adding an engine is one module, one template folder and one line here."""

from __future__ import annotations

from polgen.targets import psa
from polgen.targets.base import Document, Support, Target

TARGETS: dict[str, Target] = {
    "psa": psa.TARGET,
}

__all__ = ["TARGETS", "Document", "Support", "Target"]
