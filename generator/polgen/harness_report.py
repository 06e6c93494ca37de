"""`polgen test` reports: text for people, markdown for a published coverage report, JSON (the
stable contract) and JUnit for CI systems."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from xml.etree import ElementTree

from polgen.harness import Case, Disagreement, Outcome

_MESSAGE_WIDTH = 160
_MARK = {"expected": "✅", "unexpected": "❌", "unjudged": "⚪"}
_GAP = "⚠️"
_ACTION = {"denied": "deny", "warned": "warn"}


@dataclass(frozen=True)
class Report:
    """Everything one `polgen test` run found."""

    runner: str
    outcomes: Sequence[Outcome]
    disagreements: Sequence[Disagreement] = ()

    @property
    def failed(self) -> bool:
        """Unexpected outcomes or runners that disagree: `polgen test` exits 1."""
        return bool(self.disagreements) or any(o.status == "unexpected" for o in self.outcomes)

    def targets(self) -> list[str]:
        return list(dict.fromkeys(o.target for o in self.outcomes))

    def by_case(self) -> list[tuple[Case, list[Outcome]]]:
        grouped = [list(g) for _, g in groupby(self.outcomes, lambda o: o.case.id)]
        return [(group[0].case, group) for group in grouped]


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = {"outcomes": len(outcomes), "cases": len({o.case.id for o in outcomes})}
    for key in ("denied", "warned", "admitted"):
        counts[key] = sum(1 for o in outcomes if o.result == key)
    counts["missing"] = sum(1 for o in outcomes if o.result is None)
    for key in ("expected", "unexpected", "unjudged"):
        counts[key] = sum(1 for o in outcomes if o.status == key)
    return counts


def category(case: Case) -> str:
    """attack / benign for a scenario, allowed / disallowed for a fixture."""
    if case.scenario is not None:
        return case.scenario.scenario.category
    return case.fixture[1] if case.fixture else "-"


def first_message(outcome: Outcome) -> str:
    """The first message of the violations that made the result (denials, else warnings)."""
    action = _ACTION.get(outcome.result or "")
    message = next((v.message for v in outcome.violations if v.action == action), "")
    return message if len(message) <= _MESSAGE_WIDTH else message[: _MESSAGE_WIDTH - 1] + "…"


def _merged(outcomes: list[Outcome]) -> list[tuple[str, list[Outcome]]]:
    """Per target, clusters with the same result, status and policies share one row."""
    rows: list[tuple[str, list[Outcome]]] = []
    for target in dict.fromkeys(o.target for o in outcomes):
        same: dict[tuple[Any, ...], list[Outcome]] = {}
        for o in outcomes:
            if o.target == target:
                same.setdefault((o.result, o.status, o.policies, o.problems), []).append(o)
        rows.extend((target, members) for members in same.values())
    return rows


def to_text(report: Report) -> str:
    lines = [f"polgen test ({report.runner})", ""]
    for case, outcomes in report.by_case():
        lines.append(f"{case.id}  [{category(case)}]")
        for target, members in _merged(outcomes):
            o = members[0]
            clusters = ",".join(m.cluster for m in members)
            policies = ", ".join(o.policies) or "-"
            lines.append(
                f"  {target:<11} {o.result or 'missing':<9} {o.status:<10} {clusters:<9} {policies}"
            )
            if o.result in _ACTION:
                lines.append(f"      {first_message(o)}")
            elif o.expectation is not None and o.expectation.reason:
                lines.append(f"      ({o.expectation.reason})")
            lines.extend(f"      ! {problem}" for problem in o.problems)
    lines.extend(_disagreement_lines(report.disagreements))
    s = summary(report.outcomes)
    lines.append(
        f"{s['cases']} cases, {s['outcomes']} outcomes: {s['expected']} expected,"
        f" {s['unexpected']} unexpected, {s['unjudged']} not judged;"
        f" {len(report.disagreements)} disagreements"
    )
    return "\n".join(lines) + "\n"


def _disagreement_lines(disagreements: Sequence[Disagreement]) -> list[str]:
    if not disagreements:
        return [""]
    lines = ["", "Runners disagree:"]
    for d in disagreements:
        (a, ra), (b, rb) = d.results
        lines.append(
            f"  {d.case} {d.cluster}/{d.target}: {a} {ra or 'missing'}, {b} {rb or 'missing'}"
        )
    return [*lines, ""]


def is_gap(outcome: Outcome) -> bool:
    """An attack the target admits, as expected: a known hole in the coverage."""
    return category(outcome.case) == "attack" and outcome.result == "admitted"


def _cell(outcomes: list[Outcome]) -> str:
    parts = []
    for o in outcomes:
        mark = _GAP if is_gap(o) and o.status == "expected" else _MARK[o.status]
        text = f"{mark} {o.result or 'missing'}"
        if o.status == "unexpected" and o.expectation:
            text += f" (expected {o.expectation.result})"
        small = ", ".join(o.policies) or (o.expectation.reason if o.expectation else "")
        if small:
            text += f"<br><sub>{small}</sub>"
        parts.append(text)
    if len(set(parts)) == 1:
        return parts[0]
    return "<br>".join(f"{o.cluster}: {part}" for o, part in zip(outcomes, parts, strict=True))


def _table(report: Report, cases: list[tuple[Case, list[Outcome]]]) -> list[str]:
    targets = report.targets()
    lines = [
        "| case | kind | " + " | ".join(targets) + " |",
        "|---|---|" + "---|" * len(targets),
    ]
    for case, outcomes in cases:
        cells = [
            _cell([o for o in outcomes if o.target == t])
            if any(o.target == t for o in outcomes)
            else ""
            for t in targets
        ]
        name = case.id.split("/", 1)[1]
        lines.append(f"| `{name}` | {category(case)} | " + " | ".join(cells) + " |")
    return lines


def to_markdown(report: Report) -> str:
    """A coverage report to publish as a CI artifact: summary, scenarios, fixtures, legend."""
    lines = [f"# polgen attack coverage ({report.runner})", "", "## Summary", ""]
    lines += [
        "| target | denied | warned | admitted | expected | unexpected | not judged |",
        "|---|---|---|---|---|---|---|",
    ]
    for target in report.targets():
        s = summary([o for o in report.outcomes if o.target == target])
        lines.append(
            f"| {target} | {s['denied']} | {s['warned']} | {s['admitted']} |"
            f" {s['expected']} | {s['unexpected']} | {s['unjudged']} |"
        )
    cases = report.by_case()
    attacks = [(c, o) for c, o in cases if category(c) == "attack"]
    stopped = sum(1 for _, outcomes in attacks if not any(is_gap(o) for o in outcomes))
    lines += [
        "",
        f"{stopped} of {len(attacks)} attack scenarios are denied or warned about by"
        " every target of every cluster.",
    ]
    for target in report.targets():
        gaps = sorted(
            {
                o.case.id.split("/", 1)[1]
                for o in report.outcomes
                if o.target == target and is_gap(o)
            }
        )
        if gaps:
            lines.append(f"- {target} admits: {', '.join(f'`{g}`' for g in gaps)}")
    lines += ["", "## Attack scenarios", ""]
    lines += _table(report, [(c, o) for c, o in cases if c.scenario is not None])
    lines += ["", "## Catalog fixtures", ""]
    lines += _table(report, [(c, o) for c, o in cases if c.fixture is not None])
    failures = [o for o in report.outcomes if o.status == "unexpected"]
    if failures:
        lines += ["", "## Unexpected outcomes", ""]
        for o in failures:
            lines.append(f"- `{o.case.id}` {o.cluster}/{o.target}: {'; '.join(o.problems)}")
            if o.result in _ACTION:
                lines.append(f"  - {first_message(o)}")
    if report.disagreements:
        lines += ["", "## Runners disagree", ""]
        for d in report.disagreements:
            (a, ra), (b, rb) = d.results
            lines.append(f"- `{d.case}` {d.cluster}/{d.target}: {a} {ra}, {b} {rb}")
    lines += [
        "",
        "## Legend",
        "",
        "- ✅ what must happen happened; ❌ it did not (the run fails); ⚠️ an attack the target"
        " admits, as expected today (a coverage gap, with the reason); ⚪ not judged (Pod"
        " Security judges whole levels, or no binding selects the namespace);",
        "- denied: refused at admission; warned: admitted with a warning; admitted: no denial or"
        " warning;",
        "- small print: the catalog policies behind the denial or warning, or why an outcome"
        " differs from the scenario's default;",
        "- a cell lists clusters separately when their outcomes differ.",
    ]
    return "\n".join(lines) + "\n"


def _outcome_json(o: Outcome) -> dict[str, Any]:
    expectation = o.expectation
    return {
        "case": o.case.id,
        "source": o.case.source,
        "category": category(o.case),
        "cluster": o.cluster,
        "target": o.target,
        "runner": o.runner,
        "result": o.result,
        "status": o.status,
        "expected": None
        if expectation is None
        else {
            "result": expectation.result,
            "flaggedBy": list(expectation.flagged_by),
            "reason": expectation.reason,
        },
        "policies": list(o.policies),
        "problems": list(o.problems),
        "violations": [
            {"policy": v.policy, "rule": v.rule, "action": v.action, "message": v.message}
            for v in o.violations
        ],
    }


def to_json(report: Report) -> str:
    body = {
        "runner": report.runner,
        "summary": summary(report.outcomes),
        "outcomes": [_outcome_json(o) for o in report.outcomes],
        "disagreements": [
            {
                "case": d.case,
                "cluster": d.cluster,
                "target": d.target,
                "results": {name: result for name, result in d.results},
            }
            for d in report.disagreements
        ],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def to_junit(report: Report) -> str:
    """One testsuite per target, one testcase per case and cluster."""
    root = ElementTree.Element("testsuites", name=f"polgen test ({report.runner})")
    for target in report.targets():
        outcomes = [o for o in report.outcomes if o.target == target]
        s = summary(outcomes)
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=target,
            tests=str(len(outcomes)),
            failures=str(s["unexpected"]),
            skipped=str(s["unjudged"]),
        )
        for o in outcomes:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"{target}.{o.cluster}", name=o.case.id
            )
            if o.status == "unexpected":
                failure = ElementTree.SubElement(case, "failure", message="; ".join(o.problems))
                failure.text = "\n".join(v.message for v in o.violations)
            elif o.status == "unjudged":
                ElementTree.SubElement(case, "skipped", message=f"not judged: {o.result}")
    if report.disagreements:
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name="agreement",
            tests=str(len(report.disagreements)),
            failures=str(len(report.disagreements)),
        )
        for d in report.disagreements:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"agreement.{d.cluster}", name=f"{d.case} [{d.target}]"
            )
            text = ", ".join(f"{name} {result or 'missing'}" for name, result in d.results)
            ElementTree.SubElement(case, "failure", message=text)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


FORMATS: dict[str, Callable[[Report], str]] = {
    "text": to_text,
    "markdown": to_markdown,
    "json": to_json,
    "junit": to_junit,
}
