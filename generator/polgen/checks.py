"""The vocabulary of engine-neutral check kinds.

A catalog policy is a list of checks; each check kind is implemented once per target (a Rego, a
CEL and a Kyverno template named after the kind), so a new policy is usually YAML only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ContainerType = Literal["containers", "initContainers", "ephemeralContainers"]
CONTAINER_TYPES: tuple[ContainerType, ...] = ("containers", "initContainers", "ephemeralContainers")
""""Every container" always means all three lists."""
Scalar = str | int | bool
FieldPath = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")]


class ParamRef(BaseModel):
    """A value taken from one of the policy's parameters instead of a literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    param: str


ScalarList = list[Scalar] | ParamRef


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def param_refs(self) -> list[str]:
        """Names of the policy parameters this check reads."""
        return [value.param for value in self.__dict__.values() if isinstance(value, ParamRef)]


class PodFieldCheck(_Check):
    """A field of the pod spec must be unset (unless `required`) or one of `allowed`."""

    kind: Literal["pod-field"]
    field: FieldPath
    allowed: ScalarList
    required: bool = False


class ContainerFieldCheck(_Check):
    """A field of every container must be unset (unless `required`) or one of `allowed`."""

    kind: Literal["container-field"]
    field: FieldPath
    allowed: ScalarList
    required: bool = False
    containerTypes: list[ContainerType] = Field(default_factory=lambda: list(CONTAINER_TYPES))


class ContainerListSubsetCheck(_Check):
    """A list field of every container may only hold values from `allowed`."""

    kind: Literal["container-list-subset"]
    field: FieldPath
    allowed: ScalarList
    containerTypes: list[ContainerType] = Field(default_factory=lambda: list(CONTAINER_TYPES))


class PodListFieldCheck(_Check):
    """A field of every item of a pod-spec list (`volumes`) must be unset or in `allowed`."""

    kind: Literal["pod-list-field"]
    list: FieldPath
    field: FieldPath
    allowed: ScalarList = Field(default_factory=lambda: [])


class ImageRepositoryCheck(_Check):
    """Every container image must come from one of `repos`, resolved as a container runtime does."""

    kind: Literal["image-repository"]
    repos: ScalarList
    containerTypes: list[ContainerType] = Field(default_factory=lambda: list(CONTAINER_TYPES))


Check = Annotated[
    PodFieldCheck
    | ContainerFieldCheck
    | ContainerListSubsetCheck
    | PodListFieldCheck
    | ImageRepositoryCheck,
    Field(discriminator="kind"),
]

CHECK_KINDS: tuple[str, ...] = (
    "pod-field",
    "container-field",
    "container-list-subset",
    "pod-list-field",
    "image-repository",
)


def resolve(value: ScalarList, parameters: dict[str, Any]) -> list[Any]:
    """The concrete list a check compares against, once a binding's parameters are known."""
    if isinstance(value, ParamRef):
        resolved = parameters[value.param]
        return list(resolved)
    return list(value)
