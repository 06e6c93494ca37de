"""The registry of offline admission engines: one module each, one line here.

`_native_order` is imported first (Python imports the names of one `from` statement in order): the
CEL runtime must be loaded before the Rego runtime in any process (see that module), and every
engine module is imported through this package.
"""

from __future__ import annotations

from polgen.engines import _native_order, gatekeeper, kyverno, kyverno_validating, psa, vap
from polgen.engines.base import Engine

ENGINES: dict[str, Engine] = {
    "gatekeeper": gatekeeper.ENGINE,
    "kyverno": kyverno.ENGINE,
    "kyverno-validating": kyverno_validating.ENGINE,
    "psa": psa.ENGINE,
    "vap": vap.ENGINE,
}

__all__ = ["ENGINES", "Engine", "_native_order"]
