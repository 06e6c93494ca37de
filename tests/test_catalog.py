"""The catalog loader: the shipped catalog is valid, and every kind of mistake is located."""

from __future__ import annotations

from pathlib import Path

import pytest

from polgen.catalog import load_catalog
from polgen.errors import PolgenError
from polgen.resources import default_catalog_dir


def test_shipped_catalog_loads() -> None:
    catalog = load_catalog(default_catalog_dir())
    assert {"allowed-repos", "disallow-privileged", "disallow-host-namespaces"} <= set(
        catalog.entries
    )
    assert list(catalog.entries) == sorted(catalog.entries)


def _problems(catalog: Path) -> list[str]:
    with pytest.raises(PolgenError) as info:
        load_catalog(catalog)
    return [str(p) for p in info.value.problems]


def _edit(catalog: Path, policy: str, old: str, new: str) -> Path:
    file = catalog / "policies" / policy / "policy.yaml"
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))
    return file


def test_yaml_syntax_error_names_file_and_line(catalog_copy: Path) -> None:
    file = _edit(catalog_copy, "disallow-privileged", "severity: critical", "severity: [critical")
    [problem] = _problems(catalog_copy)
    assert problem.startswith(f"{file}:")
    assert "invalid YAML" in problem


def test_unknown_key_is_rejected_with_line(catalog_copy: Path) -> None:
    file = _edit(
        catalog_copy, "disallow-privileged", "severity: critical", "severity: critical\nsevere: yes"
    )
    [problem] = _problems(catalog_copy)
    line = file.read_text().splitlines().index("severe: yes") + 1
    assert problem == f"{file}:{line}: severe: unknown key (not allowed here)"


def test_wrong_type_in_check_is_located(catalog_copy: Path) -> None:
    file = _edit(catalog_copy, "disallow-privileged", "allowed: [false]", "allowed: nope")
    problems = _problems(catalog_copy)
    line = next(
        i for i, text in enumerate(file.read_text().splitlines(), 1) if "allowed: nope" in text
    )
    assert problems and all(p.startswith(f"{file}:{line}: checks[0].allowed") for p in problems)


def test_unknown_check_kind_lists_the_expected_kinds(catalog_copy: Path) -> None:
    _edit(catalog_copy, "disallow-privileged", "kind: container-field", "kind: container-feild")
    [problem] = _problems(catalog_copy)
    assert "container-feild" in problem and "pod-field" in problem


def test_check_refers_to_undeclared_parameter(catalog_copy: Path) -> None:
    _edit(catalog_copy, "allowed-repos", "repos: {param: repos}", "repos: {param: registries}")
    [problem] = _problems(catalog_copy)
    assert "'registries'" in problem and "declared: ['repos']" in problem


def test_parameter_default_of_wrong_type(catalog_copy: Path) -> None:
    _edit(catalog_copy, "allowed-repos", "default: []", "default: [1]")
    [problem] = _problems(catalog_copy)
    assert "parameters.repos" in problem and "item 0 must be a string" in problem


def test_policy_id_must_match_folder(catalog_copy: Path) -> None:
    _edit(catalog_copy, "disallow-privileged", "id: disallow-privileged", "id: no-privileged")
    [problem] = _problems(catalog_copy)
    assert "must equal its folder name 'disallow-privileged'" in problem


def test_problems_from_several_policies_are_all_reported(catalog_copy: Path) -> None:
    _edit(catalog_copy, "disallow-privileged", "severity: critical", "severity: extreme")
    _edit(catalog_copy, "disallow-host-path", "severity: high", "severity: extreme")
    assert len(_problems(catalog_copy)) == 2
