"""Where the shipped templates and catalog live, in a source checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_root() -> Path:
    """Return the folder holding `templates/` and `catalog/`.

    A wheel carries them in `polgen/_data`; a source checkout (editable install or tests) has them
    at the project root, two levels above the package.
    """
    packaged = _PACKAGE_DIR / "_data"
    if (packaged / "templates").is_dir():
        return packaged
    return _PACKAGE_DIR.parents[1]


def templates_dir() -> Path:
    return data_root() / "templates"


def default_catalog_dir() -> Path:
    return data_root() / "catalog"
