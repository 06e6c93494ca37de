"""The fleet: which clusters and namespaces get which policies, parameters and actions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from polgen.errors import PolgenError
from polgen.schema_errors import problems_from_validation
from polgen.yamlio import LineMap, load_with_lines

Name = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
Action = Literal["enforce", "warn", "audit"]
PodSecurityLevel = Literal["privileged", "baseline", "restricted"]
PodSecurityVersion = Annotated[str, Field(pattern=r"^(latest|v1\.(0|[1-9][0-9]?))$")]
ImagePattern = Annotated[str, Field(pattern=r"^[^*\s]*\*?$", min_length=1)]
KyvernoFlavor = Literal["ClusterPolicy", "ValidatingPolicy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exemptions(_Strict):
    """What a namespace group leaves alone: whole namespaces, and containers by image."""

    namespaces: list[Name] = Field(default_factory=list)
    images: list[ImagePattern] = Field(default_factory=list)


class PodSecurityLabels(_Strict):
    """Pod Security Admission mode levels and versions for the group's namespaces."""

    enforce: PodSecurityLevel | None = None
    enforceVersion: PodSecurityVersion = "latest"
    audit: PodSecurityLevel | None = None
    auditVersion: PodSecurityVersion = "latest"
    warn: PodSecurityLevel | None = None
    warnVersion: PodSecurityVersion = "latest"


class NamespaceGroup(_Strict):
    """Namespaces that share one policy set, action, parameters and exemptions."""

    name: Name
    namespaces: list[Annotated[str, Field(pattern=r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")]] = (
        Field(min_length=1)
    )
    policies: list[str] = Field(min_length=1)
    action: Action = "enforce"
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    exemptions: Exemptions = Field(default_factory=Exemptions)
    podSecurity: PodSecurityLabels | None = None
    podSecurityVersion: PodSecurityVersion = "latest"
    """Pod Security Standards version for bundles and versioned parameter defaults."""

    @model_validator(mode="after")
    def _wildcard_alone(self) -> NamespaceGroup:
        if "*" in self.namespaces and len(self.namespaces) > 1:
            raise ValueError("'*' (every other namespace) cannot be combined with named namespaces")
        if "*" in self.namespaces and self.podSecurity is not None:
            raise ValueError("podSecurity labels need named namespaces, not '*'")
        return self

    @property
    def is_catch_all(self) -> bool:
        return self.namespaces == ["*"]


class GatekeeperSettings(_Strict):
    """How the gatekeeper target renders ConstraintTemplates for this cluster."""

    nativeValidation: bool = False
    """Also emit CEL (engine K8sNativeValidation, Gatekeeper >= 3.16); Gatekeeper then
    evaluates the CEL and ignores the Rego."""
    legacyRego: bool = False
    """Gatekeeper 3.14-3.18: Rego v0 (future keywords) under the legacy `spec.targets[].rego`."""


class Cluster(_Strict):
    """One cluster of the fleet and its risk tolerance."""

    name: Name
    description: str = ""
    targets: list[str] | None = None
    kyvernoFlavor: KyvernoFlavor = "ClusterPolicy"
    gatekeeper: GatekeeperSettings = Field(default_factory=GatekeeperSettings)
    namespaceGroups: list[NamespaceGroup] = Field(min_length=1)


class Fleet(_Strict):
    """The whole fleet file."""

    apiVersion: Literal["polgen.dev/v1alpha1"]
    kind: Literal["Fleet"]
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    clusters: list[Cluster] = Field(min_length=1)


def load_fleet(file: Path) -> tuple[Fleet, LineMap]:
    """Load and validate the fleet's structure; cross-checks against the catalog come later."""
    data, lines = load_with_lines(file)
    try:
        return Fleet.model_validate(data), lines
    except ValidationError as exc:
        raise PolgenError(problems_from_validation(file, exc, lines)) from exc
