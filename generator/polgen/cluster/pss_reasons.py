"""Pod Security's answers name failed checks by their ForbiddenReason only; the harness names
them by check ID. This maps one to the other (k8s.io/pod-security-admission policy/*.go)."""

from __future__ import annotations

import re

REASON_CHECKS: dict[str, tuple[str, ...]] = {
    "forbidden AppArmor profile": ("appArmorProfile",),
    "forbidden AppArmor profiles": ("appArmorProfile",),
    "non-default capabilities": ("capabilities_baseline",),
    "host namespaces": ("hostNamespaces",),
    "hostPath volumes": ("hostPathVolumes",),
    "hostPort": ("hostPorts",),
    "probe or lifecycle host": ("hostProbesAndHostLifecycle",),
    "privileged": ("privileged",),
    # One reason, two checks: the restricted variant overrides the baseline one.
    "procMount": ("procMount", "procMount_restricted"),
    "seLinuxOptions": ("seLinuxOptions",),
    "seccompProfile": ("seccompProfile_baseline", "seccompProfile_restricted"),
    "forbidden sysctls": ("sysctls",),
    "hostProcess": ("windowsHostProcess",),
    "allowPrivilegeEscalation != false": ("allowPrivilegeEscalation",),
    "unrestricted capabilities": ("capabilities_restricted",),
    "restricted volume types": ("restrictedVolumes",),
    "runAsNonRoot != true": ("runAsNonRoot",),
    "runAsUser=0": ("runAsUser",),
}
_REASONS = sorted(REASON_CHECKS, key=len, reverse=True)
_SEPARATOR = re.compile(r", ")


def _skip_detail(text: str, start: int) -> int | None:
    """Index after the parenthesised detail opening at `start` (details nest no parentheses
    beyond balanced pairs)."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def failed_checks(detail: str) -> tuple[str, ...] | None:
    """Check IDs of a ForbiddenDetail `reason (detail), reason, ...`; None when a reason is not
    one Pod Security is known to produce."""
    checks: list[str] = []
    position = 0
    while position < len(detail):
        reason = next((r for r in _REASONS if detail.startswith(r, position)), None)
        if reason is None:
            return None
        checks.extend(c for c in REASON_CHECKS[reason] if c not in checks)
        position += len(reason)
        if detail.startswith(" (", position):
            end = _skip_detail(detail, position + 1)
            if end is None:
                return None
            position = end
        if position == len(detail):
            break
        separator = _SEPARATOR.match(detail, position)
        if separator is None:
            return None
        position = separator.end()
    return tuple(checks)
