"""The CEL check library's two value modes, and Gatekeeper's K8sNativeValidation code.

One CEL implementation (`templates/cel/`) serves three targets: the vap target and the Kyverno
ValidatingPolicy flavour inline a binding's parameter values as CEL literals, while Gatekeeper
reads them at run time from the Constraint (`variables.params`), so one ConstraintTemplate serves
every binding. A `ValueMode` tells the templates which; nothing else differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from polgen.catalog import Policy
from polgen.checks import CHECK_KINDS, ParamRef, resolve
from polgen.plan import Binding
from polgen.resources import templates_dir
from polgen.targets.base import render_document

EXEMPT_IMAGES_PARAMETER = "exemptImages"
"""The Gatekeeper Constraint parameter listing exempt images (as targets/gatekeeper.py declares)."""


@dataclass(frozen=True)
class ValueMode:
    """Where the CEL templates take a `{param: name}` value from.

    Inline: `parameters` are the binding's values, written into the CEL as literals, and
    `exempt_images` the binding's. Gatekeeper (`inline=False`): the CEL reads the Constraint's
    parameters at run time and `parameters` are the policy defaults it falls back on.
    """

    inline: bool
    parameters: Mapping[str, Any]
    exempt_images: tuple[str, ...] = ()
    exempt_images_parameter: str = EXEMPT_IMAGES_PARAMETER

    def resolve(self, value: Any) -> Any:
        """The literal a check value stands for (in Gatekeeper, the parameter's default)."""
        return resolve(value, dict(self.parameters))

    def is_runtime(self, value: Any) -> bool:
        """Is the value read from the Constraint at run time rather than written as a literal?"""
        return not self.inline and isinstance(value, ParamRef)

    def runtime_parameters(self, policy: Policy) -> list[str]:
        """The parameters the CEL reads at run time, each once, sorted."""
        if self.inline:
            return []
        return sorted({name for check in policy.checks for name in check.param_refs()})


def inline_values(binding: Binding) -> ValueMode:
    """The vap and Kyverno ValidatingPolicy mode: the binding's values as literals."""
    return ValueMode(True, dict(binding.parameters), tuple(binding.exempt_images))


def gatekeeper_values(policy: Policy) -> ValueMode:
    """Gatekeeper's mode: values from the Constraint, the policy defaults when it sets none."""
    return ValueMode(False, policy.default_parameters())


@cache
def cel_check_kinds() -> frozenset[str]:
    """The check kinds with a template in templates/cel/checks/."""
    folder = templates_dir() / "cel" / "checks"
    return frozenset(kind for kind in CHECK_KINDS if (folder / f"{kind}.cel.j2").is_file())


def unsupported_reason(policy: Policy) -> str | None:
    """Why the CEL library cannot express a policy, or None when it can."""
    missing = sorted({check.kind for check in policy.checks} - cel_check_kinds())
    return f"no CEL template for check kind {', '.join(missing)}" if missing else None


def gatekeeper_native_validation(policy: Policy) -> dict[str, Any]:
    """The `source` of a ConstraintTemplate's `{engine: K8sNativeValidation}` code entry:
    `variables` and `validations`, reading parameters from `variables.params` and exempt images
    from its `exemptImages`."""
    return render_document(
        "cel/native-validation.yaml.j2", policy=policy, mode=gatekeeper_values(policy)
    )
