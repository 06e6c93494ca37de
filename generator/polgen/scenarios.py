"""The attack scenario corpus: `catalog/scenarios/<name>.yaml`, one admission request each, with
the outcome every target must produce for polgen's rendered output (see the folder's README)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from polgen.admission import AdmissionRequest, debug_request, request_for
from polgen.catalog import Catalog
from polgen.errors import PolgenError, Problem
from polgen.schema_errors import problems_from_validation
from polgen.yamlio import line_for, load_with_lines

Outcome = Literal["denied", "warned", "admitted"]
"""What an admission chain does with a request: refuse it, admit it with a warning, admit it."""

ScenarioName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
DEFAULT_NAMESPACE = "prd"
EPHEMERAL = "ephemeralcontainers"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioRequest(_Strict):
    """How the object reaches admission; the default is a CREATE of `object`."""

    operation: Literal["CREATE", "UPDATE"] = "CREATE"
    subResource: Literal["", "ephemeralcontainers"] = ""
    oldObject: dict[str, Any] | None = None
    """UPDATE only. Default: `object` without `spec.ephemeralContainers` for `kubectl debug`,
    else `object` itself."""

    @model_validator(mode="after")
    def _check(self) -> ScenarioRequest:
        if self.operation == "CREATE" and (self.subResource or self.oldObject is not None):
            raise ValueError("subResource and oldObject need operation UPDATE")
        return self


class Expect(_Strict):
    """The outcome per target: `default`, overridden per target; every override needs a reason.

    One field per target of `polgen.targets.TARGETS` (tests keep the two in step)."""

    default: Outcome
    gatekeeper: Outcome | None = None
    kyverno: Outcome | None = None
    psa: Outcome | None = None
    vap: Outcome | None = None
    reasons: dict[str, str] = Field(default_factory=dict)

    def overrides(self) -> dict[str, Outcome]:
        """Targets whose outcome is not the default."""
        return {
            name: value
            for name, value in self.model_dump(exclude={"default", "reasons"}).items()
            if value is not None
        }

    def outcome(self, target: str) -> Outcome:
        return self.overrides().get(target, self.default)

    @model_validator(mode="after")
    def _reasons(self) -> Expect:
        overrides = self.overrides()
        for target, value in overrides.items():
            if value == self.default:
                raise ValueError(f"{target}: {value} is the default already; remove it")
            if not self.reasons.get(target, "").strip():
                raise ValueError(
                    f"{target} differs from the default: reasons.{target} must say why"
                )
        extra = sorted(set(self.reasons) - set(overrides))
        if extra:
            raise ValueError(f"reasons for targets without an override: {', '.join(extra)}")
        return self


class Scenario(_Strict):
    """One attack (or benign workload) and what every target does with it."""

    name: ScenarioName
    description: str = Field(min_length=1)
    category: Literal["attack", "benign"]
    namespace: ScenarioName = DEFAULT_NAMESPACE
    catches: list[str] = Field(default_factory=list)
    """Catalog policies that must deny it (or warn, where the target only warns)."""
    request: ScenarioRequest = Field(default_factory=ScenarioRequest)
    object: dict[str, Any]
    expect: Expect

    @field_validator("object")
    @classmethod
    def _manifest(cls, value: dict[str, Any]) -> dict[str, Any]:
        metadata = value.get("metadata")
        if not (
            value.get("apiVersion")
            and value.get("kind")
            and isinstance(metadata, dict)
            and metadata.get("name")
        ):
            raise ValueError("a manifest needs apiVersion, kind and metadata.name")
        return value

    def problems(self) -> list[tuple[tuple[str, ...], str]]:
        """Inconsistencies between fields, each with the key path to report it at."""
        found: list[tuple[tuple[str, ...], str]] = []
        if self.category == "benign" and (
            self.catches or self.expect.default != "admitted" or self.expect.overrides()
        ):
            found.append(
                (("category",), "a benign scenario catches nothing and every target admits it")
            )
        namespace = self.object["metadata"].get("namespace")
        if namespace not in (None, self.namespace):
            found.append(
                (
                    ("object", "metadata", "namespace"),
                    f"{namespace!r} is not the scenario's namespace {self.namespace!r}"
                    " (leave it out)",
                )
            )
        spec = self.object.get("spec")
        debug_containers = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
        if self.request.subResource == EPHEMERAL and not (
            self.object["kind"] == "Pod" and debug_containers
        ):
            found.append(
                (
                    ("request", "subResource"),
                    "ephemeralcontainers needs a Pod with spec.ephemeralContainers",
                )
            )
        return found

    def admission_request(self) -> AdmissionRequest:
        """The request the API server would send for this scenario, in its namespace."""
        obj = copy.deepcopy(self.object)
        obj["metadata"]["namespace"] = self.namespace
        if self.request.operation == "CREATE":
            return request_for(obj, "CREATE", self.namespace)
        if self.request.subResource == EPHEMERAL and self.request.oldObject is None:
            return debug_request(obj, self.namespace)
        old = (
            copy.deepcopy(self.request.oldObject) if self.request.oldObject else copy.deepcopy(obj)
        )
        old.setdefault("metadata", {})["namespace"] = self.namespace
        return dataclasses.replace(
            request_for(obj, "UPDATE", self.namespace),
            old_object=old,
            sub_resource=self.request.subResource,
        )


@dataclass(frozen=True)
class ScenarioFile:
    """A loaded scenario and the file it came from."""

    file: Path
    scenario: Scenario


def load_scenario(file: Path, catalog: Catalog) -> ScenarioFile:
    """Load and validate one scenario; problems carry file and line."""
    data, lines = load_with_lines(file)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise PolgenError(problems_from_validation(file, exc, lines)) from exc
    problems = [
        Problem(str(file), message, line_for(lines, path), ".".join(path))
        for path, message in scenario.problems()
    ]
    if scenario.name != file.stem:
        problems.append(
            Problem(
                str(file),
                f"name {scenario.name!r} must equal the file name {file.stem!r}",
                lines.get(("name",)),
                "name",
            )
        )
    for index, policy_id in enumerate(scenario.catches):
        if policy_id not in catalog.entries:
            known = ", ".join(sorted(catalog.entries))
            problems.append(
                Problem(
                    str(file),
                    f"unknown policy {policy_id!r} (expected one of: {known})",
                    lines.get(("catches", index)),
                    f"catches[{index}]",
                )
            )
    if problems:
        raise PolgenError(problems)
    return ScenarioFile(file, scenario)


def load_scenarios(folder: Path, catalog: Catalog) -> list[ScenarioFile]:
    """Every `*.yaml` in `folder`, sorted by name; all problems of all files at once."""
    if not folder.is_dir():
        raise PolgenError.single(folder, "scenario folder not found")
    loaded: list[ScenarioFile] = []
    problems: list[Problem] = []
    for file in sorted(folder.glob("*.yaml")):
        try:
            loaded.append(load_scenario(file, catalog))
        except PolgenError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolgenError(problems)
    return loaded
