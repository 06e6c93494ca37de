"""Image references resolved the way a container runtime resolves them.

This is the reference semantics of the `image-repository` check kind; every target implements the
same rules in its own language, and tests compare them against this module.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io"})


@dataclass(frozen=True)
class ImageRef:
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """Fully qualified repository, without tag or digest: `docker.io/library/ubuntu`."""
        return f"{self.registry}/{self.path}"


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _qualify(name: str) -> tuple[str, str]:
    """Split a repository name into (registry, path), adding Docker Hub defaults."""
    first, sep, rest = name.partition("/")
    if sep and _is_host(first):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return registry, path


def parse_image(image: str) -> ImageRef:
    """Parse `[registry/]path[:tag][@digest]`."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    registry, path = _qualify(name)
    return ImageRef(registry, path, tag, digest or None)


def allowed_prefixes(entry: str) -> list[str]:
    """The fully qualified repository prefixes an allowed-repos entry stands for.

    `ubuntu` means the official image `docker.io/library/ubuntu` and the Docker Hub namespace
    `docker.io/ubuntu`; `ghcr.io` means that whole registry; `ghcr.io/org` that path.
    """
    entry = entry.rstrip("/")
    if "/" not in entry:
        if _is_host(entry):
            return [entry]
        return [f"{DOCKER_HUB}/library/{entry}", f"{DOCKER_HUB}/{entry}"]
    registry, path = _qualify(entry)
    return [f"{registry}/{path}"]


def is_allowed(image: str, entries: list[str]) -> bool:
    """True when the image's repository equals an allowed prefix or lies below it."""
    repository = parse_image(image).repository
    return any(
        repository == prefix or repository.startswith(prefix + "/")
        for entry in entries
        for prefix in allowed_prefixes(entry)
    )
