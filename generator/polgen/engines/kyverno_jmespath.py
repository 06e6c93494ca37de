"""JMESPath as Kyverno's fork evaluates it, built on the `jmespath` package.

Kyverno's fork raises `Unknown key "x" in path` where standard JMESPath returns null. The error
travels through plain sub-expressions (`a.b.c` with `b` missing) but is swallowed (the value
becomes null) inside projection elements, filters, multi-selects, function arguments,
comparators, pipes, the left side of `||` and the operand of a flatten. Field access on an
explicit null (or on a non-object) is null without an error. Comparators are Go's: `==` is
reflect.DeepEqual (a bool never equals a number), and `<` `<=` `>` `>=` give null unless both
sides are numbers (strings included: no ordering of strings).
"""

from __future__ import annotations

import operator
import re
from functools import cache
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.visitor import Options, TreeInterpreter

from polgen.engines.kyverno_functions import KyvernoFunctionError, KyvernoFunctions
from polgen.engines.kyverno_scalars import go_equal

Node = dict[str, Any]


class JMESPathError(Exception):
    """A query Kyverno could not evaluate: the rule that asked reports error, never pass."""


class UnknownKeyError(JMESPathError):
    """Kyverno's NotFoundError: a map lacks the key a path names."""

    def __init__(self, key: str) -> None:
        super().__init__(f'Unknown key "{key}" in path')
        self.key = key


_FUNCTIONS = KyvernoFunctions()


class _ForkInterpreter(TreeInterpreter):  # type: ignore[misc]
    """TreeInterpreter with the fork's missing-key errors and where they are swallowed."""

    def __init__(self) -> None:
        super().__init__(Options(custom_functions=_FUNCTIONS))

    def _quiet(self, node: Node, value: Any) -> Any:
        try:
            return self.visit(node, value)
        except UnknownKeyError:
            return None

    def visit_field(self, node: Node, value: Any) -> Any:
        return _field(value, node["value"])

    def visit_subexpression(self, node: Node, value: Any) -> Any:
        """`a.b.c`: field steps without a visitor dispatch each (most queries are these)."""
        result = value
        for child in node["children"]:
            if child["type"] == "field":
                result = _field(result, child["value"])
            else:
                result = self.visit(child, result)
        return result

    def visit_projection(self, node: Node, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        collected = []
        for element in base:
            current = self._quiet(node["children"][1], element)
            if current is not None:
                collected.append(current)
        return collected

    def visit_value_projection(self, node: Node, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, dict):
            return None
        collected = []
        for element in base.values():
            current = self._quiet(node["children"][1], element)
            if current is not None:
                collected.append(current)
        return collected

    def visit_filter_projection(self, node: Node, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        collected = []
        for element in base:
            if self._is_true(self._quiet(node["children"][2], element)):
                current = self._quiet(node["children"][1], element)
                if current is not None:
                    collected.append(current)
        return collected

    def visit_flatten(self, node: Node, value: Any) -> Any:
        base = self._quiet(node["children"][0], value)
        if not isinstance(base, list):
            return None
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    def visit_multi_select_list(self, node: Node, value: Any) -> Any:
        if value is None:
            return None
        return [self._quiet(child, value) for child in node["children"]]

    def visit_multi_select_dict(self, node: Node, value: Any) -> Any:
        if value is None:
            return None
        return {child["value"]: self._quiet(child, value) for child in node["children"]}

    def visit_function_expression(self, node: Node, value: Any) -> Any:
        arguments = [self._quiet(child, value) for child in node["children"]]
        return self._functions.call_function(node["value"], arguments)

    def visit_comparator(self, node: Node, value: Any) -> Any:
        left = self._quiet(node["children"][0], value)
        right = self._quiet(node["children"][1], value)
        if node["value"] in ("eq", "ne"):
            return go_equal(left, right) is (node["value"] == "eq")
        if not (_is_number(left) and _is_number(right)):
            return None
        return _ORDERING[node["value"]](left, right)

    def visit_pipe(self, node: Node, value: Any) -> Any:
        result = value
        for child in node["children"]:
            result = self._quiet(child, result)
        return result

    def visit_or_expression(self, node: Node, value: Any) -> Any:
        matched = self._quiet(node["children"][0], value)
        if self._is_false(matched):
            matched = self.visit(node["children"][1], value)
        return matched


def _field(value: Any, key: str) -> Any:
    """The fork's field access: a map must hold the key, anything else gives null."""
    if isinstance(value, dict):
        if key not in value:
            raise UnknownKeyError(key)
        return value[key]
    return None


_INTERPRETER = _ForkInterpreter()
"""One shared interpreter: it holds no per-query state, and its visitor method cache then
survives between queries."""

_ORDERING = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@cache
def _compile(expression: str) -> Any:
    try:
        return jmespath.compile(expression)
    except jmespath_errors.JMESPathError as exc:
        raise JMESPathError(f"invalid JMESPath {expression!r}: {exc}") from exc


def query(expression: str, data: Any) -> Any:
    """Evaluate like Kyverno's context.Query; every failure is a JMESPathError."""
    parsed = _compile(expression.strip())
    try:
        return _INTERPRETER.visit(parsed.parsed, data)
    except JMESPathError:
        raise
    except jmespath_errors.JMESPathError as exc:
        raise JMESPathError(str(exc)) from exc
    except (KyvernoFunctionError, TypeError, ValueError, ArithmeticError, re.error) as exc:
        raise JMESPathError(f"JMESPath {expression!r} failed: {exc}") from exc
