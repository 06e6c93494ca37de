"""The catalog: engine-neutral policies loaded from `catalog/policies/<id>/policy.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from polgen.bundles import Bundle, load_bundles
from polgen.checks import Check, ParamRef
from polgen.errors import PolgenError, Problem
from polgen.schema_errors import problems_from_validation
from polgen.versions import PssVersion, at_least, minor
from polgen.yamlio import LineMap, load_with_lines

PolicyId = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
ParamName = Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9]*$")]

_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
}


class Parameter(BaseModel):
    """A typed, documented knob of a policy; the fleet may override its default.

    `byVersion` gives the value in force from each Pod Security Standards version on, where the
    standard changed over time; `default` is the value of its newest entry (and of `latest`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["string", "integer", "boolean", "array"]
    items: Literal["string", "integer"] | None = None
    description: str
    default: Any
    byVersion: dict[PssVersion, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        if (self.type == "array") != (self.items is not None):
            raise ValueError("'items' is required for type array and only allowed there")
        problem = self.type_problem(self.default)
        if problem:
            raise ValueError(f"default {problem}")
        for version, value in self.byVersion.items():
            problem = self.type_problem(value)
            if problem:
                raise ValueError(f"byVersion {version} {problem}")
        if self.byVersion:
            newest = max(self.byVersion, key=lambda v: minor(v) or 0)
            if self.byVersion[newest] != self.default:
                raise ValueError(f"default must equal byVersion {newest} (the newest version)")
        return self

    def value_for(self, version: str) -> Any:
        """The default in force at a Pod Security Standards version (`latest` or `v1.N`)."""
        chosen = minor(version)
        if chosen is None:
            return self.default
        numbered = {minor(v): value for v, value in self.byVersion.items() if v != "latest"}
        earlier = [m for m in numbered if m is not None and m <= chosen]
        return numbered[max(earlier)] if earlier else self.default

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
    """The Pod Security Standards control a policy implements, and since which version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Literal["baseline", "restricted"]
    control: str
    since: PssVersion | None = None


class Policy(BaseModel):
    """One abstract policy: metadata, typed parameters and checks in the check-kind vocabulary."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: PolicyId
    title: str
    description: str
    severity: Literal["low", "medium", "high", "critical"]
    category: str
    podSecurity: PodSecurityControl | None = None
    optIn: bool = False
    """Opt-in policies (such as requiring digests) are left out of a fleet's '*'."""
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

    @model_validator(mode="after")
    def _one_subject(self) -> Policy:
        subjects = {check.subject for check in self.checks}
        if len(subjects) > 1:
            raise ValueError(f"checks mix subjects {sorted(subjects)}; split the policy")
        return self

    @property
    def subject(self) -> str:
        """What the policy reviews: "pod" (Pods and pod controllers) or "service"."""
        return self.checks[0].subject

    def default_parameters(self, version: str = "latest") -> dict[str, Any]:
        return {name: param.value_for(version) for name, param in self.parameters.items()}


class CatalogPolicy(BaseModel):
    """A policy plus where it came from, so errors and fixtures can point at files."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    policy: Policy
    folder: Path

    def fixtures(self, verdict: Literal["allowed", "disallowed"]) -> list[Path]:
        return sorted((self.folder / "fixtures" / verdict).glob("*.yaml"))


class Catalog(BaseModel):
    """Every policy of a catalog folder, sorted by id, and the bundles that group them."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    root: Path
    entries: dict[str, CatalogPolicy]
    bundles: dict[str, Bundle] = Field(default_factory=dict)

    def bundle_policies(self, bundle_id: str, version: str) -> list[str]:
        """The policy ids a bundle holds at a Pod Security Standards version."""
        return [
            entry.id
            for entry in self.bundles[bundle_id].policies
            if entry.applies_at(version) and _since_ok(self.get(entry.id), version)
        ]

    @property
    def policies(self) -> list[Policy]:
        return [entry.policy for entry in self.entries.values()]

    def get(self, policy_id: str) -> Policy:
        return self.entries[policy_id].policy


def _since_ok(policy: Policy, version: str) -> bool:
    since = policy.podSecurity.since if policy.podSecurity else None
    return at_least(version, since)


def _check_bundles(
    root: Path,
    catalog_ids: set[str],
    bundles: dict[str, Bundle],
    lines: dict[str, LineMap],
    policies: dict[str, Policy],
) -> list[Problem]:
    problems = []
    for bundle_id, bundle in bundles.items():
        file = str(root / "bundles" / f"{bundle_id}.yaml")
        for index, entry in enumerate(bundle.policies):
            if entry.id not in catalog_ids:
                problems.append(
                    Problem(
                        file,
                        f"unknown policy {entry.id!r}",
                        lines[bundle_id].get(("policies", index)),
                        f"policies[{index}]",
                    )
                )
        for policy_id, values in bundle.parameters.items():
            if policy_id not in catalog_ids:
                problems.append(
                    Problem(
                        file,
                        f"parameters for unknown policy {policy_id!r}",
                        lines[bundle_id].get(("parameters", policy_id)),
                    )
                )
                continue
            for name, value in values.items():
                declared = policies[policy_id].parameters.get(name)
                reason = (
                    "is not a parameter of the policy"
                    if declared is None
                    else declared.type_problem(value)
                )
                if reason:
                    problems.append(
                        Problem(
                            file,
                            f"{policy_id}.{name} {reason}",
                            lines[bundle_id].get(("parameters", policy_id, name)),
                        )
                    )
    return problems


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
    bundles, bundle_lines = load_bundles(root / "bundles")
    problems = _check_bundles(
        root, set(entries), bundles, bundle_lines, {k: v.policy for k, v in entries.items()}
    )
    if problems:
        raise PolgenError(problems)
    return Catalog(root=root, entries=entries, bundles=bundles)


__all__ = ["Catalog", "CatalogPolicy", "ParamRef", "Parameter", "Policy", "load_catalog"]
