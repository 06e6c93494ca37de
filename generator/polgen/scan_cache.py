"""The fleet's rendered policies, kept between scans.

A scan of a few manifests costs far less than loading the catalog and rendering the fleet it is
reviewed against. So the documents each selected (cluster, target) enforces, already routed to
their engines, are stored under a digest of everything that determines them: polgen's code and
templates, every file of the catalog folder, the fleet file, the selection, Python's version and
the installed libraries (Jinja, PyYAML, pydantic and their neighbours). Equal digest, equal
documents: a hit skips the catalog models and the rendering, never the engines. A miss (or any
unreadable entry) renders as usual and stores the result. Where entries live: `polgen.cache`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from polgen.cache import cache_dir, code_digest, feed_tree, library_stamp, read_entry, write_entry
from polgen.resources import default_catalog_dir, templates_dir

Routed = list[tuple[str, list[tuple[str, dict[str, Any]]]]]
"""A source's documents grouped by engine name: [(engine, [(file, document), ...]), ...]."""
Rendered = list[tuple[str, str, Routed]]
"""(cluster, target, routed documents) for each selected source."""

_KIND = "scan"
_KEEP = 16  # entries: a few catalog revisions times a few selections
_LIBRARIES = ("jinja2", "yaml", "pydantic")


def fleet_key(catalog_dir: Path | None, fleet_file: Path | None,
              selection: Iterable[str]) -> str | None:
    """The digest of a fleet scan's inputs; None when an input cannot be read (the uncached path
    then reports it)."""
    catalog = catalog_dir or default_catalog_dir()
    fleet = fleet_file or catalog / "fleet.yaml"
    digest = hashlib.sha256()
    digest.update(json.dumps([sys.version, code_digest(), library_stamp(*_LIBRARIES),
                              *selection]).encode())
    try:
        for label, root in (("templates", templates_dir()), ("catalog", catalog)):
            feed_tree(digest, label, root)
        digest.update(b"fleet\0" + fleet.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def load(key: str) -> Rendered | None:
    """The stored documents for this key, or None."""
    folder = cache_dir(_KIND)
    if folder is None:
        return None
    data = read_entry(folder, f"{key}.json")
    if data is None:
        return None
    try:
        return [(cluster, target, [(engine, [(file, doc) for file, doc in docs])
                                   for engine, docs in routed])
                for cluster, target, routed in json.loads(data)]
    except (TypeError, ValueError):  # not an entry this code wrote: a miss
        return None


def store(key: str, rendered: Rendered) -> None:
    """Keep the documents for later scans (nothing when caching is off)."""
    folder = cache_dir(_KIND)
    if folder is None:
        return
    plain = [[cluster, target, [[engine, [[file, doc] for file, doc in docs]]
                                for engine, docs in routed]]
             for cluster, target, routed in rendered]
    try:
        data = json.dumps(plain, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return
    if json.loads(data) != plain:  # a value JSON would change (a non-string key): do not cache
        return
    write_entry(folder, f"{key}.json", data.encode(), _KEEP)
