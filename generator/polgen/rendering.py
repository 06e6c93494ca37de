"""The one Jinja environment every target renders with.

Parameter values reach templates only through the serialising filters below, so a value holding
quotes, newlines, `{{ }}` or YAML syntax comes out as that literal value, never as template code.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from polgen.cache import cache_dir
from polgen.errors import PolgenError
from polgen.resources import templates_dir

_YAML_UNSAFE = re.compile("[\u007f-\u009f\u2028\u2029\ufeff]")


def to_json(value: Any) -> str:
    """A JSON literal: valid YAML flow, a valid Rego term and a valid CEL literal alike.

    Characters YAML would fold or reject (C1 controls incl. NEL, line/paragraph separators, BOM)
    are written as \\u escapes, which all three languages read back as the same character.
    """
    text = json.dumps(value, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def to_jmespath_literal(value: Any) -> str:
    """A JMESPath raw-JSON literal (backticks), escaping backticks inside the JSON."""
    return "`" + to_json(value).replace("`", "\\`") + "`"


def to_jmespath_string(value: str) -> str:
    """A JMESPath string literal. Raw '...' literals cannot hold every string (a trailing
    backslash), so strings use the JSON-literal form too."""
    return to_jmespath_literal(value)


def kyverno_escape(text: str) -> str:
    """Stop Kyverno from substituting `{{ }}` variables and `$(...)` references that come from
    data (its escapes are `\\{{` and `\\$(`)."""
    return text.replace("{{", "\\{{").replace("$(", "\\$(")


def bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (see `polgen.cache`): compiling them is most of a
    small render's time. Jinja keys each entry by the template's source checksum and the Python
    and Jinja versions, so an edited template is never served stale."""
    folder = cache_dir("jinja")
    return None if folder is None else jinja2.FileSystemBytecodeCache(str(folder))


@cache
def environment(root: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root or templates_dir())),
        bytecode_cache=bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = to_json
    env.filters["jmespath_literal"] = to_jmespath_literal
    env.filters["jmespath_string"] = to_jmespath_string
    env.filters["kyverno_escape"] = kyverno_escape
    return env


def render(template: str, **context: Any) -> str:
    """Render one template file; template mistakes become user-facing errors naming the file."""
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise PolgenError.single(
            Path("templates") / (exc.name or template),
            f"template syntax error: {exc.message}",
            exc.lineno,
        ) from exc
    except jinja2.UndefinedError as exc:
        raise PolgenError.single(
            Path("templates") / template, f"template error: {exc.message}"
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise PolgenError.single(
            Path("templates") / template, f"template not found: {exc.name}"
        ) from exc
