"""The registry of offline admission engines: one module each, one line here.

`_native_order` is imported first, before any engine module (every one is a submodule of this
package): the CEL runtime must be loaded before the Rego runtime in any process (see that module).
`ENGINES` imports the engine modules on first use, so reviewing against one engine
(`scan --pss`) does not load the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from polgen.engines import _native_order

if TYPE_CHECKING:
    from polgen.engines.base import Engine

    ENGINES: dict[str, Engine]

_MODULES = {
    "gatekeeper": "gatekeeper",
    "kyverno": "kyverno",
    "kyverno-validating": "kyverno_validating",
    "psa": "psa",
    "vap": "vap",
}


def engine(name: str) -> Engine:
    """One engine, importing only its module."""
    found: Engine = importlib.import_module(f"{__name__}.{_MODULES[name]}").ENGINE
    return found


def __getattr__(name: str) -> Any:
    if name != "ENGINES":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    engines = {key: engine(key) for key in _MODULES}
    globals()["ENGINES"] = engines
    return engines


__all__ = ["ENGINES", "_native_order", "engine"]
