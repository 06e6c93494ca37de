"""Admission filters of an installed Kyverno (kyverno_filters): the requests in
data/kyverno_engine/resource_filters.yaml, the chart's default list, parseKinds' odd entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polgen.engines.kyverno import CLI_ENGINE, ENGINE
from polgen.engines.kyverno_context import KyvernoRequest
from polgen.engines.kyverno_filters import (
    DEFAULT_RESOURCE_FILTERS,
    AdmissionFilters,
    ResourceFilter,
    parse_resource_filters,
)

ROWS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "kyverno_engine" / "resource_filters.yaml").read_text()
)


def request(spec: dict[str, Any]) -> KyvernoRequest:
    group_version, _, kind = spec["kind"].rpartition("/")
    group, _, version = group_version.rpartition("/")
    return KyvernoRequest(
        operation="CREATE",
        object={},
        old_object=None,
        group=group,
        version=version,
        kind=kind,
        namespace=spec["namespace"],
        name=spec["name"],
        subresource=spec.get("subresource", ""),
        user_info={"username": "u", "groups": spec.get("groups", ["system:authenticated"])},
    )


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_default_install(row: dict[str, Any]) -> None:
    assert ENGINE.filters.skips(request(row["request"])) is row["skipped"]


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_the_cli_filters_nothing(row: dict[str, Any]) -> None:
    assert CLI_ENGINE.filters.skips(request(row["request"])) is False


def test_the_chart_list_starts_with_the_kyverno_namespace_and_the_generic_entries() -> None:
    assert DEFAULT_RESOURCE_FILTERS[:5] == (
        "[*/*,kyverno,*]",
        "[Event,*,*]",
        "[*/*,kube-system,*]",
        "[*/*,kube-public,*]",
        "[*/*,kube-node-lease,*]",
    )
    assert "[ReplicaSet,*,*]" in DEFAULT_RESOURCE_FILTERS
    assert "[Pod/binding,*,*]" in DEFAULT_RESOURCE_FILTERS
    assert len(DEFAULT_RESOURCE_FILTERS) == len(set(DEFAULT_RESOURCE_FILTERS)) == 104


@pytest.mark.parametrize(
    ("entries", "parsed"),
    [
        (["[Pod,apps,web]"], [("*", "*", "Pod", "", "apps", "web")]),
        (["[Pod/binding]"], [("*", "*", "Pod", "binding", "", "")]),
        (["[*/*,ns]"], [("*", "*", "*", "*", "ns", "")]),
        (
            ["[apps/v1/Deployment,a,b][Event,*,*]"],
            [
                ("apps", "v1", "Deployment", "", "a", "b"),
                ("*", "*", "Event", "", "*", "*"),
            ],
        ),
        # Go keeps the last parsed filter in a variable outside its loop: an entry with more
        # than three parts repeats the previous filter.
        (["[Event,*,*]", "[a,b,c,d]"], [("*", "*", "Event", "", "*", "*")] * 2),
        (["no brackets"], []),
    ],
)
def test_parse(entries: list[str], parsed: list[tuple[str, ...]]) -> None:
    assert parse_resource_filters(entries) == tuple(ResourceFilter(*p) for p in parsed)


def test_a_filter_with_a_name_only_skips_that_name() -> None:
    filters = AdmissionFilters(parse_resource_filters(["[Pod,apps,web-*]"]))
    skipped = request({"kind": "v1/Pod", "namespace": "apps", "name": "web-1"})
    kept = request({"kind": "v1/Pod", "namespace": "apps", "name": "db-1"})
    assert filters.skips(skipped) and not filters.skips(kept)
