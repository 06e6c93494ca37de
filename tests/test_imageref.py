"""Image references resolve as a container runtime resolves them, so look-alikes cannot pass."""

from __future__ import annotations

import pytest

from polgen.imageref import allowed_prefixes, is_allowed, parse_image

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io/library/ubuntu", None, None),
        ("ubuntu:24.04", "docker.io/library/ubuntu", "24.04", None),
        (f"ubuntu@{DIGEST}", "docker.io/library/ubuntu", None, DIGEST),
        (f"ubuntu:24.04@{DIGEST}", "docker.io/library/ubuntu", "24.04", DIGEST),
        ("docker.io/ubuntu", "docker.io/library/ubuntu", None, None),
        ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu", None, None),
        ("open-policy-agent/gatekeeper:v3", "docker.io/open-policy-agent/gatekeeper", "v3", None),
        ("ghcr.io/org/app:1", "ghcr.io/org/app", "1", None),
        ("localhost:5000/app", "localhost:5000/app", None, None),
        ("localhost/app", "localhost/app", None, None),
        ("ubuntu:5000/x", "ubuntu:5000/x", None, None),
    ],
)
def test_parse_image(image: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_image(image)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)


def test_prefixes_of_entries() -> None:
    assert allowed_prefixes("ubuntu") == ["docker.io/library/ubuntu", "docker.io/ubuntu"]
    assert allowed_prefixes("ghcr.io") == ["ghcr.io"]
    assert allowed_prefixes("ghcr.io/org/") == ["ghcr.io/org"]
    assert allowed_prefixes("docker.io/ubuntu") == ["docker.io/library/ubuntu"]


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("ubuntu", True),
        ("ubuntu:24.04", True),
        (f"ubuntu@{DIGEST}", True),
        ("docker.io/library/ubuntu:22.04", True),
        ("ubuntu/squid", True),
        ("open-policy-agent/opa:latest", True),
        ("ubuntuevil/x", False),
        ("ubuntu.evil.example/x", False),
        ("ubuntu:5000/x", False),
        ("evil.io/ubuntu", False),
        ("open-policy-agentx/opa", False),
        ("ghcr.io/ubuntu", False),
        ("alpine", False),
    ],
)
def test_allowed_for_the_example_fleet(image: str, allowed: bool) -> None:
    assert is_allowed(image, ["open-policy-agent", "ubuntu"]) is allowed


def test_registry_entries() -> None:
    assert is_allowed("ghcr.io/org/app", ["ghcr.io/org"])
    assert not is_allowed("ghcr.io/organisation/app", ["ghcr.io/org"])
    assert is_allowed("quay.io/x/y", ["quay.io"])
    assert not is_allowed("quay.io.evil.example/x", ["quay.io"])
