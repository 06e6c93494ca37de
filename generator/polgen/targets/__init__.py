"""The registry of targets: a new engine is one module, one template folder, one name here.

`TARGET_NAMES` is known without importing anything, so the command line can offer the targets
without loading Jinja, the catalog models and every target (a scan against `--pss` or
`--policies` needs none of them); `TARGETS` imports the target modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

TARGET_NAMES = ("gatekeeper", "kyverno", "psa", "vap")
"""The target modules of this package, in the order every listing uses."""

if TYPE_CHECKING:
    from polgen.targets.base import Target

    TARGETS: dict[str, Target]


def __getattr__(name: str) -> Any:
    if name != "TARGETS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    targets = {
        target: importlib.import_module(f"{__name__}.{target}").TARGET for target in TARGET_NAMES
    }
    globals()["TARGETS"] = targets
    return targets


__all__ = ["TARGETS", "TARGET_NAMES"]
