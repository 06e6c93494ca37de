"""What every target provides, and the one way targets turn templates into documents."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from polgen import yamlio
from polgen.catalog import Policy
from polgen.errors import PolgenError
from polgen.plan import ClusterPlan
from polgen.rendering import render


@dataclass(frozen=True)
class Document:
    """One Kubernetes resource, to be written as `<file>` in the target's output folder."""

    file: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Support:
    """Whether a target can express a policy, and if not, why."""

    supported: bool
    reason: str = ""


class Target(Protocol):
    """A rendering backend: one module in `polgen.targets` plus one folder in `templates/`."""

    name: str
    summary: str
    minimum_versions: str

    def support(self, policy: Policy) -> Support:
        """Can this target express every check of the policy?"""
        ...

    def render(self, plan: ClusterPlan) -> list[Document]:
        """Every resource this target needs in one cluster."""
        ...


def render_document(template: str, **context: Any) -> dict[str, Any]:
    """Render a Jinja template holding one YAML document and parse it back."""
    text = render(template, **context)
    try:
        body = yamlio.load_one(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolgenError.single(
            Path("templates") / template, f"rendered output is not valid YAML: {exc}", line
        ) from exc
    if not isinstance(body, dict):
        raise PolgenError.single(
            Path("templates") / template, "rendered output is not one YAML mapping"
        )
    return body


def render_text(template: str, **context: Any) -> str:
    """Render a Jinja template holding policy code (Rego, CEL, JMESPath), stripped."""
    return render(template, **context).strip() + "\n"
