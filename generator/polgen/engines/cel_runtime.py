"""The project's one CEL runtime: cel-expr-python configured like the Kubernetes CEL environment.

Every declared variable is `dyn` (as `object`/`oldObject`/`params` are in ValidatingAdmissionPolicy;
offline there are no OpenAPI schemas, so `request.namex` fails at evaluation instead of at type
checking). The environment has CEL optional types, the strings extension (version 2, as in
Kubernetes) and the Kubernetes library of `cel_k8s_library`. Anything the environment does not
declare — `authorizer`, two-variable comprehensions, `semver`, Kyverno's `http`/`resource`
libraries — fails to compile, so an unsupported policy is reported, never passed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from polgen.cache import generation_dir, library_stamp, read_entry, write_entry
from polgen.engines.base import EngineError
from polgen.engines.cel_k8s_library import kubernetes_library

_STRINGS_VERSION = 2  # k8s.io/apiserver/pkg/cel/environment: ext.Strings(ext.StringsVersion(2))
_INT64 = (-(2**63), 2**63 - 1)


class CelCompileError(EngineError):
    """An expression that does not parse or type-check in the Kubernetes CEL environment."""

    def __init__(self, expression: str, reason: str) -> None:
        short = " ".join(expression.split())
        super().__init__(f"CEL expression {short[:120]!r}", reason)
        self.expression = expression


class CelEvaluationError(Exception):
    """A CEL runtime error (no such key, no matching overload, overflow, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PreparedActivation:
    """Variables converted to CEL values once, for every program that declares the same names.

    Engines build one per request: binding the Pod once instead of once per expression makes an
    evaluation several times faster. It also holds the request's policy variable values.
    """

    def __init__(self, names: Sequence[str], data: Mapping[str, Any]) -> None:
        self.names = tuple(sorted(set(names)))
        self.data = {name: data.get(name) for name in self.names}
        self._native = environment(self.names).Activation(self.data)
        # Policy variables (`cel_variables`): each policy's state by its scope, outcomes by
        # definition, and native activations binding them.
        self.scopes: dict[object, Any] = {}
        self.settled: dict[int, tuple[int, Any]] = {}
        self.holders: dict[tuple[str, int | None], list[tuple[dict[str, int], Any]]] = {}


Bindings = Mapping[str, Any] | PreparedActivation
"""What the prepared evaluation entry points take: plain (already `to_cel`) values or a
PreparedActivation."""


@dataclass(frozen=True)
class Declared:
    """A typed declaration (`variables.x`); the type's name stands for the type in cache keys."""

    name: str
    type_name: str
    type: Any = field(compare=False)


class CelProgram:
    """One compiled expression; evaluate it against any number of activations."""

    def __init__(self, expression: str, names: tuple[str, ...], compiled: Any) -> None:
        self.expression = expression
        self._names = names
        self._compiled = compiled
        self.result_type: Any = compiled.return_type()

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The expression's value for these variables (JSON-like Python values in and out).

        A declared variable missing from `activation` is bound to null.
        """
        data = {name: to_cel(activation.get(name)) for name in self._names}
        return self.evaluate_prepared(data)

    def evaluate_prepared(self, data: Bindings) -> Any:
        """Like `evaluate`, for values already passed through `to_cel` (engines do it once)."""
        return plain_result(self.run(data))

    def run(self, data: Bindings) -> Any:
        """The raw CEL result (an error value included)."""
        if isinstance(data, PreparedActivation) and data.names == self._names:
            return self._compiled.eval(data._native)
        values = data.data if isinstance(data, PreparedActivation) else data
        return self._compiled.eval(data={name: values.get(name) for name in self._names})

    def run_native(self, activation: Any) -> Any:
        """The raw CEL result for a native activation that binds every name it reads."""
        return self._compiled.eval(activation)


def plain_result(result: Any) -> Any:
    """A raw CEL result as a JSON-like Python value; CelEvaluationError if it is an error."""
    if result.type() == cel.Type.ERROR:
        try:
            reason = str(result.value())
        except TypeError:
            reason = "the expression evaluates to an optional value, not a plain value"
        raise CelEvaluationError(reason)
    return _from_cel(result.plain_value())


def compile_expression(expression: str, variables: Sequence[str]) -> CelProgram:
    """Compile once (cached by expression text and declared names); `variables` are the names the
    expression may reference (each `dyn`)."""
    return compile_declared(expression, tuple(sorted(set(variables))))


@lru_cache(maxsize=8192)
def compile_declared(expression: str, names: tuple[str, ...],
                     declared: tuple[Declared, ...] = ()) -> CelProgram:
    """Compile once (cached) with `names` as `dyn` and each typed declaration with its type.

    Compiling (parsing and type-checking) is most of a small scan's time, so checked programs
    are also kept between runs (`polgen.cache`, per polgen version: the library functions they
    call are polgen's code), keyed by the expression and its declarations.
    """
    env = environment(names, declared)
    declarations = [(d.name, d.type_name) for d in declared]
    key = hashlib.sha256(json.dumps(
        [library_stamp("cel_expr_python"), expression, names, declarations]
    ).encode()).hexdigest()
    folder = generation_dir("cel")
    compiled = _stored_program(env, folder, key) if folder is not None else None
    if compiled is None:
        try:
            compiled = env.compile(expression)
        except RuntimeError as error:
            reason = str(error).removeprefix("INVALID_ARGUMENT: ").strip()
            if re.search(r"undeclared reference to 'authorizer'", reason):
                reason = "the authorizer variable is not supported offline: " + reason
            raise CelCompileError(expression, reason) from None
        if folder is not None:
            payload = compiled.serialize()
            write_entry(folder, key, hashlib.sha256(payload).digest() + payload)
    return CelProgram(expression, names, compiled)


def _stored_program(env: Any, folder: Path, key: str) -> Any:
    """A kept program, or None. An entry is its payload's sha256 and the payload; anything else
    (or a payload the runtime refuses) is compiled again."""
    stored = read_entry(folder, key)
    if stored is None or hashlib.sha256(stored[32:]).digest() != stored[:32]:
        return None
    try:
        return env.deserialize(stored[32:])
    except (RuntimeError, ValueError):
        return None


@lru_cache(maxsize=1024)
def environment(names: tuple[str, ...], declared: tuple[Declared, ...] = ()) -> Any:
    """The Kubernetes CEL environment declaring these names (`dyn`) and typed declarations."""
    variables = {name: cel.Type.DYN for name in names}
    variables.update((declaration.name, declaration.type) for declaration in declared)
    return cel.NewEnv(
        variables=variables,
        extensions=[
            ext_optional.ExtOptional(),
            ext_strings.ExtStrings(_STRINGS_VERSION),
            kubernetes_library(),
        ],
    )


def to_cel(value: Any) -> Any:
    """A manifest value as the API server would hand it to CEL: JSON types only.

    YAML loads unquoted timestamps as dates; the API server sees them as RFC 3339 strings.
    """
    if isinstance(value, dict):
        return {str(key): to_cel(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_cel(item) for item in value]
    if isinstance(value, datetime.date):
        return _rfc3339(value)
    if isinstance(value, int) and not isinstance(value, bool) and not (
        _INT64[0] <= value <= _INT64[1]
    ):
        return float(value)
    return value


def _rfc3339(value: datetime.date) -> str:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    return value.isoformat()


def _from_cel(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _from_cel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_cel(item) for item in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value
