"""Scan reports: text for people, JSON (the stable contract), JUnit and SARIF for CI systems."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from polgen import __version__

if TYPE_CHECKING:  # the engines behind scan results are an optional install
    from polgen.scan import ScanResult

_SARIF_LEVEL = {"deny": "error", "warn": "warning", "audit": "note"}


def summary(results: list[ScanResult]) -> dict[str, int]:
    resources = {
        (
            r.manifest.file,
            r.manifest.request.kind,
            r.manifest.request.namespace,
            r.manifest.request.name,
        )
        for r in results
    }
    return {
        "resources": len(resources),
        "results": len(results),
        "allowed": sum(1 for r in results if r.verdict.allowed),
        "denied": sum(1 for r in results if not r.verdict.allowed),
        "warned": sum(1 for r in results if any(v.action == "warn" for v in r.verdict.violations)),
        "violations": sum(len(r.verdict.violations) for r in results),
    }


def to_json(results: list[ScanResult]) -> str:
    """`{"results": [...], "summary": {...}}`; one result per resource x cluster x target."""
    body = {"results": [r.to_json() for r in results], "summary": summary(results)}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _subject(result: ScanResult) -> str:
    request = result.manifest.request
    where = f"{request.namespace}/" if request.namespace else ""
    sub = f" ({request.operation} {request.sub_resource})" if request.sub_resource else ""
    return f"{request.kind} {where}{request.name}{sub}"


def _status(result: ScanResult) -> str:
    if not result.verdict.allowed:
        return "DENIED"
    if result.verdict.violations:
        return "WARNED" if any(v.action == "warn" for v in result.verdict.violations) else "AUDIT"
    return "ALLOWED"


def to_text(results: list[ScanResult]) -> str:
    """A table: status, cluster, target, resource, file; violations indented below."""
    rows = [(_status(r), r.cluster or "-", r.target, _subject(r), r.manifest.file) for r in results]
    widths = [
        max([len(h)] + [len(row[i]) for row in rows])
        for i, h in enumerate(("STATUS", "CLUSTER", "TARGET", "RESOURCE", "FILE"))
    ]
    header = ("STATUS", "CLUSTER", "TARGET", "RESOURCE", "FILE")
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row, result in zip(rows, results, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for v in result.verdict.violations:
            rule = f"/{v.rule}" if v.rule else ""
            lines.append(f"    {v.action}: [{v.policy}{rule}] {v.message}")
    s = summary(results)
    lines.append(
        f"{s['resources']} resources, {s['results']} results: {s['allowed']} allowed,"
        f" {s['denied']} denied, {s['warned']} warned"
    )
    return "\n".join(lines) + "\n"


def to_junit(results: list[ScanResult]) -> str:
    """One testsuite per cluster/target, one testcase per resource; denials are failures."""
    root = ElementTree.Element("testsuites", name="polgen scan")
    suites: dict[str, list[ScanResult]] = {}
    for result in results:
        suites.setdefault(f"{result.cluster or 'policies'}/{result.target}", []).append(result)
    for name, members in suites.items():
        failures = sum(1 for r in members if not r.verdict.allowed)
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(members)),
            failures=str(failures),
            errors="0",
            skipped="0",
        )
        for result in members:
            case = ElementTree.SubElement(
                suite, "testcase", name=_subject(result), classname=result.manifest.file
            )
            messages = [f"[{v.policy}] {v.message}" for v in result.verdict.violations]
            if not result.verdict.allowed:
                denied = [
                    f"[{v.policy}] {v.message}"
                    for v in result.verdict.violations
                    if v.action == "deny"
                ]
                failure = ElementTree.SubElement(case, "failure", message=denied[0], type="denied")
                failure.text = "\n".join(denied)
            if messages:
                ElementTree.SubElement(case, "system-out").text = "\n".join(
                    f"{v.action}: [{v.policy}] {v.message}" for v in result.verdict.violations
                )
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _qualified_name(result: ScanResult) -> str:
    request = result.manifest.request
    return f"{request.kind}/{request.namespace}/{request.name}"


def to_sarif(results: list[ScanResult]) -> str:
    """SARIF 2.1.0: one result per violation, located at the manifest file."""
    rules = sorted({v.policy for r in results for v in r.verdict.violations})
    sarif_results = []
    for result in results:
        request = result.manifest.request
        for v in result.verdict.violations:
            sarif_results.append(
                {
                    "ruleId": v.policy,
                    "ruleIndex": rules.index(v.policy),
                    "level": _SARIF_LEVEL[v.action],
                    "message": {"text": v.message},
                    "locations": [
                        {
                            "physicalLocation": {"artifactLocation": {"uri": result.manifest.file}},
                            "logicalLocations": [
                                {
                                    "name": request.name,
                                    "fullyQualifiedName": _qualified_name(result),
                                    "kind": "resource",
                                }
                            ],
                        }
                    ],
                    "properties": {
                        "cluster": result.cluster,
                        "target": result.target,
                        "rule": v.rule,
                        "action": v.action,
                    },
                }
            )
    body = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "polgen",
                        "version": __version__,
                        "rules": [{"id": rule, "name": rule} for rule in rules],
                    }
                },
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


FORMATS: dict[str, Callable[[list[ScanResult]], str]] = {
    "text": to_text,
    "json": to_json,
    "junit": to_junit,
    "sarif": to_sarif,
}


def render_report(fmt: str, results: list[ScanResult]) -> str:
    return FORMATS[fmt](results)


__all__ = ["FORMATS", "render_report", "summary"]
