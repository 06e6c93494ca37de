"""The vocabulary of engine-neutral check kinds.

A catalog policy is a list of checks; each check kind is implemented once per target (a Rego, a
CEL and a Kyverno template named after the kind), so a new policy is usually YAML only. The exact
semantics and messages of every kind are in docs/architecture.md; `polgen.semantics` is their
reference implementation.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ContainerType = Literal["containers", "initContainers", "ephemeralContainers"]
CONTAINER_TYPES: tuple[ContainerType, ...] = ("containers", "initContainers", "ephemeralContainers")
""""Every container" always means all three lists."""
Scalar = str | int | bool
FieldPath = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")]
Subject = Literal["pod", "service"]


class ParamRef(BaseModel):
    """A value taken from one of the policy's parameters instead of a literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    param: str


ScalarList = list[Scalar] | ParamRef
IntValue = int | ParamRef


class SkipIf(BaseModel):
    """Skip the check for a pod whose spec has `field == equals` (e.g. `os.name: windows`).

    With `param`, the skip applies only while that boolean parameter is true: this is how a
    Pod Security Standards relaxation that arrived in some version is switched per version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    field: FieldPath
    equals: Scalar
    param: str | None = None


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: ClassVar[Subject] = "pod"
    mutable: ClassVar[bool] = False
    """True for kinds about fields a Pod UPDATE can change (images, labels): they still run on a
    Pod UPDATE other than through pods/ephemeralcontainers, every other kind skips it."""

    def param_refs(self) -> list[str]:
        """Names of the policy parameters this check reads."""
        names = [value.param for value in self.__dict__.values() if isinstance(value, ParamRef)]
        for skip in getattr(self, "skipIf", []):
            if skip.param is not None:
                names.append(skip.param)
        return names


class _Condition(_Check):
    """A value rule: `allowed` or `forbidden` (at most one); `required` forbids unset."""

    allowed: ScalarList | None = None
    forbidden: ScalarList | None = None
    required: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> _Condition:
        if self.allowed is not None and self.forbidden is not None:
            raise ValueError("give 'allowed' or 'forbidden', not both")
        if self.allowed is None and self.forbidden is None and not self.required:
            raise ValueError("give 'allowed', 'forbidden' or 'required: true'")
        return self


class _Skippable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    skipIf: list[SkipIf] = Field(default_factory=lambda: [])


class _ContainerScoped(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    containerTypes: list[ContainerType] = Field(default_factory=lambda: list(CONTAINER_TYPES))


class PodFieldCheck(_Condition, _Skippable):
    """A field of the pod spec must satisfy the value rule."""

    kind: Literal["pod-field"]
    field: FieldPath


class ContainerFieldCheck(_Condition, _Skippable, _ContainerScoped):
    """A field of every container must satisfy the value rule."""

    kind: Literal["container-field"]
    field: FieldPath


class PodAndContainerFieldCheck(_Condition, _Skippable, _ContainerScoped):
    """A field that exists both in the pod spec and in every container (`securityContext.x`):
    each value that is set must satisfy the rule; with `required`, every container needs it set
    itself or inherited from the pod."""

    kind: Literal["pod-and-container-field"]
    field: FieldPath


class ContainerListSubsetCheck(_Check, _Skippable, _ContainerScoped):
    """A list field of every container may only hold values from `allowed`."""

    kind: Literal["container-list-subset"]
    field: FieldPath
    allowed: ScalarList


class ContainerListContainsCheck(_Check, _Skippable, _ContainerScoped):
    """A list field of every container must hold every value of `values` (missing list fails)."""

    kind: Literal["container-list-contains"]
    field: FieldPath
    values: ScalarList


class ContainerListRangeCheck(_Check, _Skippable, _ContainerScoped):
    """A numeric field of every item of a container list (`ports[].hostPort`) must be unset,
    0, or within `min`..`max`."""

    kind: Literal["container-list-range"]
    list: FieldPath
    field: FieldPath
    min: IntValue
    max: IntValue


class PodListFieldCheck(_Check, _Skippable):
    """A field of every item of a pod-spec list (`volumes`) must be unset or in `allowed`."""

    kind: Literal["pod-list-field"]
    list: FieldPath
    field: FieldPath
    allowed: ScalarList = Field(default_factory=lambda: [])


class PodListKeysCheck(_Check, _Skippable):
    """Every item of a pod-spec list may only set (non-null) keys from `allowed`, besides
    `ignore` (volume types)."""

    kind: Literal["pod-list-keys"]
    list: FieldPath
    allowed: ScalarList
    ignore: tuple[str, ...] = ("name",)


class PodAnnotationCheck(_Check, _Skippable):
    """Every pod annotation whose key starts with `keyPrefix` must have an allowed value
    (entries ending in `*` are prefixes)."""

    kind: Literal["pod-annotation"]
    keyPrefix: str = Field(min_length=1)
    allowed: ScalarList


class PodLabelsCheck(_Check):
    """The pod (Pod metadata or pod-template metadata) must carry every label key in `keys`."""

    kind: Literal["pod-labels"]
    keys: ScalarList
    mutable: ClassVar[bool] = True


class ImageRepositoryCheck(_Check, _ContainerScoped):
    """Every container image must come from one of `repos`, resolved as a runtime does."""

    kind: Literal["image-repository"]
    repos: ScalarList
    mutable: ClassVar[bool] = True


class ImageTagCheck(_Check, _ContainerScoped):
    """Every image must name a tag or a digest, and its tag must not be one of `forbidden`."""

    kind: Literal["image-tag"]
    forbidden: ScalarList
    mutable: ClassVar[bool] = True


class ImageDigestCheck(_Check, _ContainerScoped):
    """Every image must be pinned by digest (`@sha256:...`)."""

    kind: Literal["image-digest"]
    mutable: ClassVar[bool] = True


class NamespaceCheck(_Check):
    """The object's namespace must not be one of `forbidden`."""

    kind: Literal["namespace"]
    forbidden: ScalarList


class ServiceFieldCheck(_Condition):
    """A field of a Service's spec must satisfy the value rule."""

    kind: Literal["service-field"]
    field: FieldPath
    subject: ClassVar[Subject] = "service"


Check = Annotated[
    PodFieldCheck
    | ContainerFieldCheck
    | PodAndContainerFieldCheck
    | ContainerListSubsetCheck
    | ContainerListContainsCheck
    | ContainerListRangeCheck
    | PodListFieldCheck
    | PodListKeysCheck
    | PodAnnotationCheck
    | PodLabelsCheck
    | ImageRepositoryCheck
    | ImageTagCheck
    | ImageDigestCheck
    | NamespaceCheck
    | ServiceFieldCheck,
    Field(discriminator="kind"),
]

CHECK_KINDS: tuple[str, ...] = (
    "pod-field",
    "container-field",
    "pod-and-container-field",
    "container-list-subset",
    "container-list-contains",
    "container-list-range",
    "pod-list-field",
    "pod-list-keys",
    "pod-annotation",
    "pod-labels",
    "image-repository",
    "image-tag",
    "image-digest",
    "namespace",
    "service-field",
)


def resolve(value: Any, parameters: dict[str, Any]) -> Any:
    """The concrete value a check compares against, once a binding's parameters are known."""
    if isinstance(value, ParamRef):
        return parameters[value.param]
    if isinstance(value, list):
        return list(value)
    return value
