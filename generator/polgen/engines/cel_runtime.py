"""The project's one CEL runtime: cel-expr-python configured like the Kubernetes CEL environment.

Every declared variable is `dyn` (as `object`/`oldObject`/`params` are in ValidatingAdmissionPolicy;
offline there are no OpenAPI schemas, so `request.namex` fails at evaluation instead of at type
checking). The environment has CEL optional types, the strings extension (version 2, as in
Kubernetes) and the Kubernetes library of `cel_k8s_library`. Anything the environment does not
declare — `authorizer`, two-variable comprehensions, `semver`, Kyverno's `http`/`resource`
libraries — fails to compile, so an unsupported policy is reported, never passed.

Policy `variables` are composed the way the API server's lazy variables behave: each
`variables.<name>` reference is replaced by the variable's parenthesised expression before
compiling. A variable is then evaluated only where it is reached, an error in it surfaces exactly
where the lazy value would have been read (and is absorbed by `||`/`&&` the same way), and
optional-typed variables keep their type. The cost is re-evaluation per reference.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from polgen.admission import AdmissionRequest
from polgen.engines.base import EngineError
from polgen.engines.cel_k8s_library import kubernetes_library

_STRINGS_VERSION = 2  # k8s.io/apiserver/pkg/cel/environment: ext.Strings(ext.StringsVersion(2))
_MAX_COMPOSED_CHARS = 200_000
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
    evaluation several times faster.
    """

    def __init__(self, names: Sequence[str], data: Mapping[str, Any]) -> None:
        self.names = tuple(sorted(set(names)))
        self.data = {name: data.get(name) for name in self.names}
        self._native = _environment(self.names).Activation(self.data)


Bindings = Mapping[str, Any] | PreparedActivation
"""What the prepared evaluation entry points take: plain (already `to_cel`) values or a
PreparedActivation."""


class CelProgram:
    """One compiled expression; evaluate it against any number of activations."""

    def __init__(self, expression: str, names: tuple[str, ...], compiled: Any) -> None:
        self.expression = expression
        self._names = names
        self._compiled = compiled

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The expression's value for these variables (JSON-like Python values in and out).

        A declared variable missing from `activation` is bound to null.
        """
        data = {name: to_cel(activation.get(name)) for name in self._names}
        return self.evaluate_prepared(data)

    def evaluate_prepared(self, data: Bindings) -> Any:
        """Like `evaluate`, for values already passed through `to_cel` (engines do it once)."""
        if isinstance(data, PreparedActivation) and data.names == self._names:
            result = self._compiled.eval(data._native)
        else:
            values = data.data if isinstance(data, PreparedActivation) else data
            result = self._compiled.eval(data={name: values.get(name) for name in self._names})
        if result.type() == cel.Type.ERROR:
            try:
                reason = result.value()
            except TypeError:
                reason = "the expression evaluates to an optional value, not a plain value"
            raise CelEvaluationError(str(reason))
        return _from_cel(result.plain_value())


def compile_expression(expression: str, variables: Sequence[str]) -> CelProgram:
    """Compile once (cached by expression text and declared names); `variables` are the names the
    expression may reference (each `dyn`)."""
    return _compile(expression, tuple(sorted(set(variables))))


@lru_cache(maxsize=4096)
def _compile(expression: str, names: tuple[str, ...]) -> CelProgram:
    try:
        compiled = _environment(names).compile(expression)
    except RuntimeError as error:
        reason = str(error).removeprefix("INVALID_ARGUMENT: ").strip()
        if re.search(r"undeclared reference to 'authorizer'", reason):
            reason = "the authorizer variable is not supported offline: " + reason
        raise CelCompileError(expression, reason) from None
    return CelProgram(expression, names, compiled)


@lru_cache(maxsize=64)
def _environment(names: tuple[str, ...]) -> Any:
    return cel.NewEnv(
        variables={name: cel.Type.DYN for name in names},
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


# --- admission policies: the variables and expressions of VAP and Kyverno ValidatingPolicy -------

ADMISSION_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject")


def admission_activation(
    request: AdmissionRequest, namespace: dict[str, Any] | None, params: Any = None
) -> dict[str, Any]:
    """`object`, `oldObject`, `request`, `params`, `namespaceObject` as the API server binds them.

    `request` is the AdmissionRequest without its objects (they are separate variables), with the
    empty-string defaults of a typed request; `namespaceObject` is null when cluster-scoped.
    """
    review = request.to_review()
    del review["object"], review["oldObject"]
    review.setdefault("subResource", "")
    review.setdefault("requestSubResource", "")
    activation: dict[str, Any] = to_cel(
        {
            "object": request.object,
            "oldObject": request.old_object,
            "request": review,
            "params": params,
            "namespaceObject": namespace if request.namespace else None,
        }
    )
    return activation


@dataclass(frozen=True)
class CelValidation:
    """One `validations[]` entry, compiled (expression and message composed with the variables)."""

    expression: str
    program: CelProgram
    message: str
    message_program: CelProgram | None
    reason: str


@dataclass(frozen=True)
class CelPolicyExpressions:
    """The CEL parts admission policies share: matchConditions, variables, validations and
    auditAnnotations (the `spec` of ValidatingAdmissionPolicy and Kyverno ValidatingPolicy)."""

    match_conditions: tuple[tuple[str, CelProgram], ...]
    validations: tuple[CelValidation, ...]
    audit_annotations: tuple[tuple[str, CelProgram], ...]

    @classmethod
    def compile(cls, spec: Mapping[str, Any], names: Sequence[str]) -> CelPolicyExpressions:
        """Compile a policy spec; raises CelCompileError naming the failing field."""
        definitions: dict[str, str] = {}
        for index, variable in enumerate(spec.get("variables") or []):
            field = f"spec.variables[{index}]"
            composed = _compiled(field, str(variable["expression"]), definitions, names).expression
            definitions[str(variable["name"])] = composed
        conditions = tuple(
            (str(c["name"]), _compiled(f"spec.matchConditions[{i}]", str(c["expression"]), {},
                                       names))
            for i, c in enumerate(spec.get("matchConditions") or [])
        )
        validations = tuple(
            _validation(f"spec.validations[{i}]", v, definitions, names)
            for i, v in enumerate(spec.get("validations") or [])
        )
        annotations = tuple(
            (str(a["key"]), _compiled(f"spec.auditAnnotations[{i}]", str(a["valueExpression"]),
                                      definitions, names))
            for i, a in enumerate(spec.get("auditAnnotations") or [])
        )
        return cls(conditions, validations, annotations)

    def match(self, data: Bindings) -> tuple[bool, str | None]:
        """matchConditions: any false skips, errors matter only when none is false."""
        errors: list[str] = []
        for name, program in self.match_conditions:
            try:
                result = program.evaluate_prepared(data)
            except CelEvaluationError as error:
                errors.append(f"matchCondition {name!r}: {error.reason}")
                continue
            if result is False:
                return False, None
            if result is not True:
                errors.append(f"matchCondition {name!r} must evaluate to bool")
        return (False, "; ".join(errors)) if errors else (True, None)


def _compiled(field: str, expression: str, definitions: Mapping[str, str],
              names: Sequence[str]) -> CelProgram:
    try:
        return compile_expression(compose_variables(expression, definitions), names)
    except CelCompileError as error:
        raise CelCompileError(expression, f"{field}: {error.reason}") from None


def _validation(field: str, entry: Mapping[str, Any], definitions: Mapping[str, str],
                names: Sequence[str]) -> CelValidation:
    expression = str(entry["expression"])
    message_expression = entry.get("messageExpression")
    return CelValidation(
        expression=expression,
        program=_compiled(f"{field}.expression", expression, definitions, names),
        message=str(entry.get("message") or ""),
        message_program=None if not message_expression else _compiled(
            f"{field}.messageExpression", str(message_expression), definitions, names
        ),
        reason=str(entry.get("reason") or ""),
    )


# --- variable composition ------------------------------------------------------------------------

_STRING_START = re.compile(r"""(?i)(?:[rb]{1,2})?('''|\"\"\"|'|")""")
_VARIABLE_REF = re.compile(r"\bvariables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


def compose_variables(expression: str, definitions: Mapping[str, str]) -> str:
    """`expression` with every `variables.<name>` replaced by that (already composed) definition.

    `definitions` maps a variable name to its composed expression; a reference to a name that is
    not defined (in Kubernetes: not defined *earlier*) is a compile error.
    """
    pieces: list[str] = []
    for code, literal in _split_literals(expression):
        pieces.append(_VARIABLE_REF.sub(partial(_definition, code=code, definitions=definitions),
                                        code))
        pieces.append(literal)
    composed = "".join(pieces)
    if len(composed) > _MAX_COMPOSED_CHARS:
        raise CelCompileError(expression, "variables nest too deeply to compose offline")
    return composed


def _definition(match: re.Match[str], code: str, definitions: Mapping[str, str]) -> str:
    if _is_member_access(code, match.start()):
        return match.group(0)
    name = match.group(1)
    if name not in definitions:
        raise CelCompileError(code, f"undefined variable {name!r} (variables.{name})")
    return f"({definitions[name]}\n)"  # the newline ends a trailing `//` comment


def _is_member_access(code: str, start: int) -> bool:
    """`x.variables.y` selects a field named `variables`; it is not the variables object."""
    return code[:start].rstrip().endswith(".")


def _split_literals(expression: str) -> list[tuple[str, str]]:
    """(code, following string literal or comment) pairs, so rewriting never touches literals."""
    parts: list[tuple[str, str]] = []
    position = 0
    code_start = 0
    while position < len(expression):
        if expression.startswith("//", position):
            end = expression.find("\n", position)
            end = len(expression) if end < 0 else end
            parts.append((expression[code_start:position], expression[position:end]))
            position = code_start = end
            continue
        match = _STRING_START.match(expression, position)
        if match and not _continues_identifier(expression, position):
            end = _literal_end(expression, match)
            parts.append((expression[code_start:position], expression[position:end]))
            position = code_start = end
            continue
        position += 1
    parts.append((expression[code_start:], ""))
    return parts


def _continues_identifier(expression: str, position: int) -> bool:
    """A quote-like match inside an identifier (`bar'`) is not a literal prefix."""
    return position > 0 and (expression[position - 1].isalnum() or expression[position - 1] == "_")


def _literal_end(expression: str, match: re.Match[str]) -> int:
    quote = match.group(1)
    raw = "r" in match.group(0)[: match.start(1) - match.start()].lower()
    position = match.end()
    while position < len(expression):
        if not raw and expression[position] == "\\":
            position += 2
            continue
        if expression.startswith(quote, position):
            return position + len(quote)
        position += 1
    return len(expression)
