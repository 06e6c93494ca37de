"""The catalog: engine-neutral policies loaded from `catalog/policies/<id>/policy.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from polgen.checks import Check, ParamRef
from polgen.errors import PolgenError, Problem
from polgen.schema_errors import problems_from_validation
from polgen.yamlio import load_with_lines

PolicyId = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
ParamName = Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9]*$")]

_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
}


class Parameter(BaseModel):
    """A typed, documented knob of a policy; the fleet may override its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["string", "integer", "boolean", "array"]
    items: Literal["string", "integer"] | None = None
    description: str
    default: Any

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        if (self.type == "array") != (self.items is not None):
            raise ValueError("'items' is required for type array and only allowed there")
        problem = self.type_problem(self.default)
        if problem:
            raise ValueError(f"default {problem}")
        return self

    def type_problem(self, value: Any) -> str | None:
        """Why `value` does not fit this parameter, or None when it does."""
        if self.type == "array":
            assert self.items is not None
            if not isinstance(value, list):
                return f"must be a list of {self.items}s, got {type(value).__name__}"
            for index, item in enumerate(value):
                if not _is_scalar_of(item, self.items):
                    return f"item {index} must be a {self.items}, got {type(item).__name__}"
            return None
        if not _is_scalar_of(value, self.type):
            return f"must be a {self.type}, got {type(value).__name__}"
        return None

    def openapi_schema(self) -> dict[str, Any]:
        """The structural schema engines (Gatekeeper CRDs) use to validate this parameter."""
        if self.type == "array":
            return {"type": "array", "description": self.description, "items": {"type": self.items}}
        return {"type": self.type, "description": self.description}


def _is_scalar_of(value: Any, type_name: str) -> bool:
    if type_name == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _SCALAR_TYPES[type_name])


class PodSecurityControl(BaseModel):
    """The Pod Security Standards control a policy implements."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Literal["baseline", "restricted"]
    control: str


class Policy(BaseModel):
    """One abstract policy: metadata, typed parameters and checks in the check-kind vocabulary."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: PolicyId
    title: str
    description: str
    severity: Literal["low", "medium", "high", "critical"]
    category: str
    podSecurity: PodSecurityControl | None = None
    parameters: dict[ParamName, Parameter] = Field(default_factory=dict)
    checks: list[Check] = Field(min_length=1)

    @model_validator(mode="after")
    def _params_exist(self) -> Policy:
        for index, check in enumerate(self.checks):
            for name in check.param_refs():
                if name not in self.parameters:
                    raise ValueError(
                        f"checks[{index}] refers to parameter {name!r}, which the policy does not"
                        f" declare (declared: {sorted(self.parameters) or 'none'})"
                    )
        return self

    def default_parameters(self) -> dict[str, Any]:
        return {name: param.default for name, param in self.parameters.items()}


class CatalogPolicy(BaseModel):
    """A policy plus where it came from, so errors and fixtures can point at files."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    policy: Policy
    folder: Path

    def fixtures(self, verdict: Literal["allowed", "disallowed"]) -> list[Path]:
        return sorted((self.folder / "fixtures" / verdict).glob("*.yaml"))


class Catalog(BaseModel):
    """Every policy of a catalog folder, sorted by id."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    root: Path
    entries: dict[str, CatalogPolicy]

    @property
    def policies(self) -> list[Policy]:
        return [entry.policy for entry in self.entries.values()]

    def get(self, policy_id: str) -> Policy:
        return self.entries[policy_id].policy


def load_policy(file: Path) -> Policy:
    """Load and validate one policy.yaml, reporting every problem with its line."""
    data, lines = load_with_lines(file)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolgenError(problems_from_validation(file, exc, lines)) from exc
    if policy.id != file.parent.name:
        raise PolgenError.single(
            file,
            f"policy id {policy.id!r} must equal its folder name {file.parent.name!r}",
            lines.get(("id",)),
            "id",
        )
    return policy


def load_catalog(root: Path) -> Catalog:
    """Load every `policies/<id>/policy.yaml` under `root`; collect all problems before failing."""
    policies_dir = root / "policies"
    if not policies_dir.is_dir():
        raise PolgenError.single(root, "catalog folder has no 'policies/' directory")
    problems: list[Problem] = []
    entries: dict[str, CatalogPolicy] = {}
    for folder in sorted(p for p in policies_dir.iterdir() if p.is_dir()):
        file = folder / "policy.yaml"
        if not file.is_file():
            problems.append(Problem(str(folder), "policy folder has no policy.yaml"))
            continue
        try:
            policy = load_policy(file)
        except PolgenError as exc:
            problems.extend(exc.problems)
            continue
        entries[policy.id] = CatalogPolicy(policy=policy, folder=folder)
    if problems:
        raise PolgenError(problems)
    if not entries:
        raise PolgenError.single(policies_dir, "catalog has no policies")
    return Catalog(root=root, entries=entries)


__all__ = ["Catalog", "CatalogPolicy", "ParamRef", "Parameter", "Policy", "load_catalog"]
