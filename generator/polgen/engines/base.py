"""What every offline admission engine provides: policy documents in, verdicts out."""

from __future__ import annotations

from typing import Any, Protocol

from polgen.admission import AdmissionRequest, Violation


class EngineError(Exception):
    """A policy the engine cannot evaluate faithfully: reported as bad input, never as a pass."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class PolicySet(Protocol):
    """Loaded, compiled policies of one engine, ready to review requests."""

    def review(
        self, request: AdmissionRequest, namespace: dict[str, Any] | None = None
    ) -> list[Violation]:
        """Every violation of every loaded policy that matches the request.

        `namespace` is the request's Namespace object (labels for selectors), when known.
        """
        ...


class Engine(Protocol):
    """One admission engine: which documents it understands and how it loads them."""

    name: str

    def accepts(self, document: dict[str, Any]) -> bool:
        """Is this a policy document (or a part of one) this engine evaluates?"""
        ...

    def load(self, documents: list[tuple[str, dict[str, Any]]]) -> PolicySet:
        """Compile (source file, document) pairs; raise EngineError when unsupported."""
        ...
