"""The catalog as a table: what `polgen list` prints."""

from __future__ import annotations

from typing import Any

from polgen.catalog import Catalog
from polgen.targets.base import Target


def policy_table(catalog: Catalog, targets: dict[str, Target]) -> list[dict[str, Any]]:
    """One row per policy with its parameters and each target's support and reason."""
    rows = []
    for policy in catalog.policies:
        rows.append(
            {
                "id": policy.id,
                "title": policy.title,
                "severity": policy.severity,
                "category": policy.category,
                "podSecurity": policy.podSecurity.model_dump() if policy.podSecurity else None,
                "parameters": {
                    name: {
                        "type": param.type if param.items is None else f"array<{param.items}>",
                        "default": param.default,
                        "description": param.description,
                    }
                    for name, param in policy.parameters.items()
                },
                "targets": {
                    name: {"supported": support.supported, "reason": support.reason}
                    for name, target in targets.items()
                    for support in [target.support(policy)]
                },
            }
        )
    return rows


def bundle_table(catalog: Catalog) -> list[dict[str, Any]]:
    """Which catalog policies each bundle (Pod Security Standards level) holds at `latest`."""
    return [
        {
            "id": bundle.id,
            "title": bundle.title,
            "podSecurityLevel": bundle.podSecurityLevel,
            "minimumVersion": bundle.minimumVersion,
            "policies": catalog.bundle_policies(bundle.id, "latest"),
        }
        for bundle in catalog.bundles.values()
    ]
