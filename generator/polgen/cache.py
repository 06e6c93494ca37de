"""polgen's cache folder: results that depend only on input bytes, kept between runs.

`POLGEN_CACHE_DIR` names the folder; set but empty, caching is off; unset, it is
`$XDG_CACHE_HOME/polgen` (`~/.cache/polgen`). A folder that cannot be created or written means no
cache, never an error, and so is a folder that someone else owns or may write. Nothing read from
it can change a result: every entry is keyed by a digest of what produced it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

CACHE_VARIABLE = "POLGEN_CACHE_DIR"


def cache_dir(kind: str) -> Path | None:
    """The folder for one kind of entry, created if needed; None when caching is off or the
    folder is unusable."""
    root = os.environ.get(CACHE_VARIABLE)
    if root == "":
        return None
    if root is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(base) / "polgen")
    folder = Path(root) / kind
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = all(_private(place) for place in (Path(root), folder))
    except OSError:
        return None
    return folder if private and os.access(folder, os.W_OK) else None


def _private(folder: Path) -> bool:
    """Only its owner may write it: an entry planted by someone else could make a scan admit
    what the policies deny, so a folder others can write is not used (Jinja's own rule)."""
    status = folder.stat()
    owner = getattr(os, "getuid", lambda: status.st_uid)()
    return status.st_uid == owner and not status.st_mode & 0o022


def feed_tree(digest: Any, label: str, root: Path, pattern: str = "*") -> None:
    """Add every file of a folder (its path within it, size and bytes) to a digest."""
    files = sorted(p for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    for file in files:
        data = file.read_bytes()
        name = file.relative_to(root).as_posix()
        digest.update(f"{label}\0{name}\0{len(data)}\0".encode() + data)


@cache
def code_digest() -> str:
    """A digest of polgen's own code: entries that depend on it are kept per code version."""
    digest = hashlib.sha256()
    feed_tree(digest, "code", Path(__file__).resolve().parent, "*.py")
    return digest.hexdigest()


@cache
def library_stamp(*modules: str) -> str:
    """What is installed where these modules live: the names (and so the versions) of every
    distribution in their site-packages folders. Cheaper than importlib.metadata, which takes
    longer to import than a warm scan's whole review."""
    names: set[str] = set()
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None:
            names.add(f"{module}: not installed")
            continue
        # A package's folder, or a single-file module's file, sits in site-packages.
        place = next(iter(spec.submodule_search_locations or []), None) or str(spec.origin)
        folder = Path(place).resolve().parent
        names.update(f"{folder}/{entry}" for entry in os.listdir(folder)
                     if entry.endswith(".dist-info"))
    return "\n".join(sorted(names))


def generation_dir(kind: str) -> Path | None:
    """`<cache>/<kind>/<code digest>`: for entries only this version of polgen can read. The
    folders of other versions are removed when this one is made, so the cache does not grow
    with every upgrade."""
    base = cache_dir(kind)
    if base is None:
        return None
    folder = base / code_digest()[:32]
    if folder.is_dir():
        return folder
    for old in base.iterdir():
        shutil.rmtree(old, ignore_errors=True)
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder


def read_entry(folder: Path, name: str) -> bytes | None:
    """An entry's bytes, or None when it is absent or unreadable."""
    try:
        return (folder / name).read_bytes()
    except OSError:
        return None


def write_entry(folder: Path, name: str, data: bytes, keep: int | None = None) -> None:
    """Write an entry atomically (readers never see half of one); with `keep`, then drop the
    least recently written entries beyond it. Failures are ignored: a cache may always miss."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".", delete=False) as temporary:
            temporary.write(data)
        os.replace(temporary.name, folder / name)
        if keep is None:
            return
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for stale in entries[keep:]:
            stale.unlink(missing_ok=True)
    except OSError:
        return
