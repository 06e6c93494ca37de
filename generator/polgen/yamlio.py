"""YAML in and out: loading that remembers line numbers, and one canonical dump for all output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from polgen.errors import PolgenError

try:
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment,unused-ignore]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

PathKey = tuple[str | int, ...]
LineMap = dict[PathKey, int]


def _walk(node: yaml.Node, path: PathKey, lines: LineMap) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def _syntax_error(file: Path, exc: yaml.YAMLError) -> PolgenError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return PolgenError.single(file, f"invalid YAML: {problem}", line)


def load_with_lines(file: Path) -> tuple[Any, LineMap]:
    """Load one YAML document and a map from each key path to the line it starts on."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolgenError.single(file, f"cannot read file: {exc.strerror}") from exc
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _syntax_error(file, exc) from exc
    lines: LineMap = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def line_for(lines: LineMap, path: PathKey) -> int | None:
    """The line of the deepest known prefix of `path` (pydantic locations may go past the input)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def load_one(text: str) -> Any:
    """Parse one YAML document with libyaml when available (rendered output is parsed back)."""
    return yaml.load(text, Loader=_Loader)


def load_all(text: str, source: str | Path = "<string>") -> Iterator[Any]:
    """Load every document of a multi-document YAML stream (libyaml when available)."""
    try:
        yield from yaml.load_all(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _syntax_error(Path(source), exc) from exc


def _represent_str(dumper: Any, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    node: yaml.ScalarNode = dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)
    return node


class PythonDumper(yaml.SafeDumper):
    """Block style, insertion order, literal blocks for multi-line text (Rego, CEL)."""


PythonDumper.add_representer(str, _represent_str)

_Dumper: type = PythonDumper
if hasattr(yaml, "CSafeDumper"):

    class LibyamlDumper(yaml.CSafeDumper):  # type: ignore[misc,name-defined,unused-ignore]
        """The same output as PythonDumper (a test compares them on every rendered file),
        about eight times faster."""

    LibyamlDumper.add_representer(str, _represent_str)
    _Dumper = LibyamlDumper


def dump(document: Any, dumper: type | None = None) -> str:
    """Serialise one document the same way every time: no timestamps, no hash-order dependence."""
    return yaml.dump(
        document,
        Dumper=dumper or _Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
