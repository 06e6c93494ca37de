"""Fleet loading and planning: structure errors and cross-checks against the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from polgen.errors import PolgenError
from polgen.pipeline import load_inputs

FLEET_HEAD = "apiVersion: polgen.dev/v1alpha1\nkind: Fleet\n"


def _write_fleet(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "fleet.yaml"
    file.write_text(FLEET_HEAD + body)
    return file


def _problems(catalog: Path, fleet: Path) -> list[str]:
    with pytest.raises(PolgenError) as info:
        load_inputs(catalog, fleet)
    return [str(p) for p in info.value.problems]


GROUP = """clusters:
  - name: c1
    namespaceGroups:
      - name: g1
        namespaces: [prd]
        policies: {policies}
        action: {action}
        parameters: {parameters}
"""


def _group(policies: str = '["*"]', action: str = "enforce", parameters: str = "{}") -> str:
    return GROUP.format(policies=policies, action=action, parameters=parameters)


def test_example_fleet_plans_every_cluster() -> None:
    inputs = load_inputs()
    assert [plan.name for plan in inputs.plans] == ["dev", "prod"]
    prd = [b for b in inputs.plans[0].bindings if b.group == "prd"]
    every = {k for k, v in inputs.catalog.entries.items() if not v.policy.optIn}
    assert {b.policy.id for b in prd} == every
    assert every != set(inputs.catalog.entries), "'*' leaves out opt-in policies"
    assert all(b.action == "enforce" for b in prd)
    repos = next(b for b in prd if b.policy.id == "allowed-repos").parameters["repos"]
    assert repos == ["open-policy-agent", "ubuntu"]


def test_unknown_policy_id_is_located(catalog_copy: Path, tmp_path: Path) -> None:
    fleet = _write_fleet(tmp_path, _group(policies="[disallow-privileged, no-such-policy]"))
    [problem] = _problems(catalog_copy, fleet)
    assert problem.startswith(f"{fleet}:8: clusters.0.namespaceGroups.0.policies.1:")
    assert "unknown policy 'no-such-policy'" in problem


def test_parameter_of_wrong_type(catalog_copy: Path, tmp_path: Path) -> None:
    fleet = _write_fleet(tmp_path, _group(parameters="{allowed-repos: {repos: ubuntu}}"))
    [problem] = _problems(catalog_copy, fleet)
    assert "parameter 'repos' must be a list of strings, got str" in problem
    assert problem.startswith(f"{fleet}:10:")


def test_unknown_parameter_name(catalog_copy: Path, tmp_path: Path) -> None:
    fleet = _write_fleet(tmp_path, _group(parameters="{allowed-repos: {registries: []}}"))
    [problem] = _problems(catalog_copy, fleet)
    assert "has no parameter 'registries' (expected one of: repos)" in problem


def test_bad_action_and_unknown_key(catalog_copy: Path, tmp_path: Path) -> None:
    fleet = _write_fleet(tmp_path, _group(action="block") + "        colour: red\n")
    problems = _problems(catalog_copy, fleet)
    assert any("action" in p and "'enforce', 'warn' or 'audit'" in p for p in problems)
    assert any("colour: unknown key" in p for p in problems)


def test_namespace_in_two_groups(catalog_copy: Path, tmp_path: Path) -> None:
    body = _group() + "      - name: g2\n        namespaces: [prd]\n        policies: ['*']\n"
    fleet = _write_fleet(tmp_path, body)
    [problem] = _problems(catalog_copy, fleet)
    assert "namespace 'prd' is already in group 'g1'" in problem


def test_catch_all_group_excludes_named_namespaces(catalog_copy: Path, tmp_path: Path) -> None:
    body = _group() + (
        "      - name: rest\n        namespaces: ['*']\n        policies: [disallow-privileged]\n"
        "        exemptions: {namespaces: [kube-system]}\n"
    )
    inputs = load_inputs(catalog_copy, _write_fleet(tmp_path, body))
    [rest] = [b for b in inputs.plans[0].bindings if b.group == "rest"]
    assert rest.namespaces == ()
    assert rest.excluded_namespaces == ("kube-system", "prd")


def test_yaml_syntax_error_in_fleet(catalog_copy: Path, tmp_path: Path) -> None:
    fleet = _write_fleet(tmp_path, "clusters: [\n")
    [problem] = _problems(catalog_copy, fleet)
    assert problem.startswith(f"{fleet}:") and "invalid YAML" in problem


def test_missing_fleet_file(catalog_copy: Path, tmp_path: Path) -> None:
    [problem] = _problems(catalog_copy, tmp_path / "nope.yaml")
    assert "fleet file not found" in problem


def test_group_exempting_all_its_namespaces(catalog_copy: Path, tmp_path: Path) -> None:
    fleet = _write_fleet(tmp_path, _group() + "        exemptions: {namespaces: [prd]}\n")
    [problem] = _problems(catalog_copy, fleet)
    assert "exempts every namespace of the group" in problem


def test_bundle_group_gets_matching_pod_security_labels(catalog_copy: Path, tmp_path: Path) -> None:
    body = _group(policies='["bundle:restricted"]', action="warn").replace(
        "        parameters: {}\n", "        parameters: {}\n        podSecurityVersion: v1.30\n"
    )
    inputs = load_inputs(catalog_copy, _write_fleet(tmp_path, body))
    [security] = inputs.plans[0].namespaces
    assert security.namespace == "prd"
    assert (security.labels.warn, security.labels.warnVersion) == ("restricted", "v1.30")
    assert security.labels.enforce is None and security.labels.audit is None


def test_explicit_pod_security_labels_win_over_bundles(catalog_copy: Path, tmp_path: Path) -> None:
    body = _group(policies='["bundle:restricted"]') + "        podSecurity: {enforce: baseline}\n"
    inputs = load_inputs(catalog_copy, _write_fleet(tmp_path, body))
    [security] = inputs.plans[0].namespaces
    assert security.labels.enforce == "baseline"
