"""Pinned versions for the real-cluster run (`versions.yaml`), their overrides, and the one
place that reads an engine's install manifest: from its upstream URL or, air-gapped, a file."""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polgen.errors import PolgenError
from polgen.schema_errors import problems_from_validation
from polgen.yamlio import load_with_lines

VERSIONS_FILE = Path(__file__).with_name("versions.yaml")
EngineName = Literal["gatekeeper", "kyverno"]
ENGINES: tuple[EngineName, ...] = ("gatekeeper", "kyverno")

MANIFEST_ENV: dict[EngineName, str] = {
    "gatekeeper": "POLGEN_E2E_GATEKEEPER_MANIFEST",
    "kyverno": "POLGEN_E2E_KYVERNO_MANIFEST",
}
NODE_IMAGE_ENV = "POLGEN_E2E_NODE_IMAGE"
KIND_BINARY_ENV = "POLGEN_E2E_KIND"
DOWNLOAD_TIMEOUT_SECONDS = 60

_VERSION = r"^v\d+\.\d+\.\d+$"
_URL = re.compile(r"^https?://", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KindPins(_Strict):
    """The kind release and node image the cluster is built from."""

    minimumVersion: str = Field(pattern=_VERSION)
    nodeImage: str = Field(min_length=1)
    featureGates: dict[str, bool] = Field(default_factory=dict)


class EnginePin(_Strict):
    """One admission engine: its release and where its install manifest comes from."""

    version: str = Field(pattern=_VERSION)
    manifest: str = Field(min_length=1)


class Pins(_Strict):
    kind: KindPins
    engines: dict[EngineName, EnginePin]

    def with_overrides(
        self,
        manifests: Mapping[str, str] | None = None,
        node_image: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Pins:
        """Constructor arguments win over environment variables, which win over the file."""
        environ = os.environ if env is None else env
        unknown = sorted(set(manifests or {}) - set(ENGINES))
        if unknown:
            expected = ", ".join(ENGINES)
            raise PolgenError.single(
                "manifests", f"unknown engine {unknown[0]!r} (expected one of: {expected})"
            )
        engines = dict(self.engines)
        for name in ENGINES:
            given = (manifests or {}).get(name) or environ.get(MANIFEST_ENV[name])
            if given:
                engines[name] = engines[name].model_copy(update={"manifest": given})
        image = node_image or environ.get(NODE_IMAGE_ENV) or self.kind.nodeImage
        return Pins(kind=self.kind.model_copy(update={"nodeImage": image}), engines=engines)


def load_pins(file: Path = VERSIONS_FILE) -> Pins:
    """Load and validate `versions.yaml`, reporting problems with their lines."""
    data, lines = load_with_lines(file)
    try:
        pins = Pins.model_validate(data)
    except ValidationError as exc:
        raise PolgenError(problems_from_validation(file, exc, lines)) from exc
    missing = [name for name in ENGINES if name not in pins.engines]
    if missing:
        raise PolgenError.single(file, f"engines: missing {', '.join(missing)}")
    return pins


@dataclass(frozen=True)
class ManifestSource:
    """Where an install manifest is read from: an http(s) URL or a local file."""

    location: str

    @property
    def is_url(self) -> bool:
        return bool(_URL.match(self.location))

    def path(self, base: Path | None = None) -> Path:
        """The local file (relative locations resolve against `base`, else the working dir)."""
        raw = self.location.removeprefix("file://")
        path = Path(raw).expanduser()
        return path if path.is_absolute() or base is None else base / path

    def read(self, base: Path | None = None) -> str:
        """The manifest text; the only network access of the e2e run happens here."""
        if self.is_url:
            with urllib.request.urlopen(self.location, timeout=DOWNLOAD_TIMEOUT_SECONDS) as reply:
                body: bytes = reply.read()
            return body.decode("utf-8")
        path = self.path(base)
        if not path.is_file():
            raise PolgenError.single(path, "install manifest not found (a URL or a local file)")
        return path.read_text(encoding="utf-8")


def manifest_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document manifest, each a Kubernetes object."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise PolgenError.single(source, f"install manifest is not valid YAML: {exc}") from exc
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
            raise PolgenError.single(source, f"document {index} is not a Kubernetes object")
    return documents
