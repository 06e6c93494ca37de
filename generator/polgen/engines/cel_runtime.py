"""The project's one CEL runtime: cel-expr-python configured like the Kubernetes CEL environment.

Every declared variable is `dyn` (as `object`/`oldObject`/`params` are in ValidatingAdmissionPolicy;
offline there are no OpenAPI schemas, so `request.namex` fails at evaluation instead of at type
checking). The environment has CEL optional types, the strings extension (version 2, as in
Kubernetes) and the Kubernetes library of `cel_k8s_library`. Anything the environment does not
declare — `authorizer`, two-variable comprehensions, `semver`, Kyverno's `http`/`resource`
libraries — fails to compile, so an unsupported policy is reported, never passed.

Policy `variables` behave like the API server's lazy variables, and each expression is compiled
once, on its own, cached by its text and declarations across policies and clusters (compiling
every validation with its variables' text inlined took seconds for the example fleet). An
expression sees a variable `x` as the identifier `variables.x`, declared with x's own result type,
so type errors surface at compile time as in Kubernetes. At review time it first gets the values
of the variables it reads, each evaluated once per request (`PreparedActivation`, shared by every
policy reviewed with it) in declaration order. A failed variable stays unbound: reading it is an
error carrying the variable's own reason, which `||`/`&&` absorb like any CEL error
(`true || variables.broken` is true). Where a value cannot be bound unchanged (an optional, a
type, a uint or timestamp inside a dyn) the expression is evaluated with the variables' text
substituted (`compose_variables`), which is the same lazy semantics; so is a program run often by
a policy that shares no values with others, once substituting is the cheaper way.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache, partial
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
    evaluation several times faster. It also holds the request's policy variable values.
    """

    def __init__(self, names: Sequence[str], data: Mapping[str, Any]) -> None:
        self.names = tuple(sorted(set(names)))
        self.data = {name: data.get(name) for name in self.names}
        self._native = _environment(self.names).Activation(self.data)
        self._variables: dict[VariableScope, _RequestVariables] = {}
        # Policy variables: outcomes by definition, and native activations binding them.
        self.settled: dict[int, tuple[int, Any]] = {}
        self.holders: dict[tuple[str, int | None], list[tuple[dict[str, int], Any]]] = {}

    def variables(self, scope: VariableScope) -> _RequestVariables:
        """This request's values of one policy's variables (evaluated on first need)."""
        found = self._variables.get(scope)
        if found is None:
            found = self._variables[scope] = _RequestVariables(scope, self, not self._variables)
        return found


Bindings = Mapping[str, Any] | PreparedActivation
"""What the prepared evaluation entry points take: plain (already `to_cel`) values or a
PreparedActivation."""


@dataclass(frozen=True)
class _Declared:
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
        return _python(self.run(data))

    def run(self, data: Bindings) -> Any:
        """The raw CEL result (an error value included)."""
        if isinstance(data, PreparedActivation) and data.names == self._names:
            return self._compiled.eval(data._native)
        values = data.data if isinstance(data, PreparedActivation) else data
        return self._compiled.eval(data={name: values.get(name) for name in self._names})

    def run_native(self, activation: Any) -> Any:
        """The raw CEL result for a native activation that binds every name it reads."""
        return self._compiled.eval(activation)


def _python(result: Any) -> Any:
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
    return _compile(expression, tuple(sorted(set(variables))))


@lru_cache(maxsize=8192)
def _compile(expression: str, names: tuple[str, ...],
             declared: tuple[_Declared, ...] = ()) -> CelProgram:
    try:
        compiled = _environment(names, declared).compile(expression)
    except RuntimeError as error:
        reason = str(error).removeprefix("INVALID_ARGUMENT: ").strip()
        if re.search(r"undeclared reference to 'authorizer'", reason):
            reason = "the authorizer variable is not supported offline: " + reason
        raise CelCompileError(expression, reason) from None
    return CelProgram(expression, names, compiled)


@lru_cache(maxsize=1024)
def _environment(names: tuple[str, ...], declared: tuple[_Declared, ...] = ()) -> Any:
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


# --- policy variables: compiled once, evaluated once per request ---------------------------------

_QUALIFIED = "variables."
_MISSING = re.compile(r'(?:[A-Z_]+: )?No value with name "variables\.(\w+)" found in Activation')
# Code that can put an optional or a uint where the static type says dyn: plain_value() cannot
# carry those back (and crashes on an optional inside a map), so such values are checked one by one.
_HIDDEN_VALUES = re.compile(r"[.\[]\s*\?|\boptional\b|\buint\b|\b(?:0x[0-9a-fA-F]+|\d+)[uU]\b")
# Python values that bind back to CEL unchanged whatever the declared type.
_JSON_TYPES = frozenset({dict, list, str, int, float, bool, type(None), bytes, bytearray})
_EXACT_TYPES = (cel.Type.UINT, cel.Type.TIMESTAMP, cel.Type.DURATION)
_BOUND, _FAILED, _OPAQUE = range(3)
_HOT_RUNS = 256
_IDS = itertools.count()


@lru_cache(maxsize=65536)
def _definition_id(names: tuple[str, ...], expression: str, needs: tuple[int, ...]) -> int:
    """Equal definitions (same text over equal definitions) get one id: their values are equal, so
    a value computed for one policy serves every policy of the request."""
    return next(_IDS)


class _Unbindable(Exception):
    """A variable value that cannot be bound from Python without changing it."""


@dataclass(frozen=True)
class _Variable:
    name: str
    position: int
    program: ScopedProgram
    declared: _Declared
    substituted: str | None  # the text its readers substitute, or None when it is bound
    checked: bool  # a dyn value that may hide unbindable values: convert element by element
    id: int


class ScopedProgram:
    """An expression of a policy, compiled once, reading the policy's variables as bindings."""

    def __init__(self, expression: str, text: str, program: CelProgram, scope: VariableScope,
                 needs: Sequence[_Variable], composed: bool) -> None:
        self.expression = expression
        self.text = text  # what was compiled: the expression, some variables substituted
        self.program = program
        self.scope = scope
        self.composed = composed  # every variable substituted: nothing to bind
        self.visible = len(scope.variables)
        self.needs = tuple(sorted(needs, key=lambda variable: variable.position))
        self.bindings = tuple((variable.name, variable.id) for variable in self.needs)
        self.runs = 0

    @cached_property
    def inlined(self) -> bool:
        """Whether to evaluate the text with every variable substituted: it reads a variable
        that a later variable of the same name hides. Asked once the policy is compiled."""
        latest = self.scope.latest
        return self.composed or any(latest(v.name) is not v for v in self.needs)

    def evaluate_prepared(self, data: Bindings) -> Any:
        """The value for this request (variables evaluated on first need, then reused)."""
        if not self.needs:
            return self.program.evaluate_prepared(data)
        if not isinstance(data, PreparedActivation):
            data = PreparedActivation(self.scope.names, data)
        variables = data.variables(self.scope)
        if variables.alone:
            # No other policy shares this request's variable values (Gatekeeper evaluates each
            # Constraint on its own): for a program run often, compiling its text with the
            # variables substituted costs less than moving their values through Python each time.
            self.runs += 1
            if self.runs > _HOT_RUNS:
                try:
                    return self.scope.composed(self).evaluate_prepared(data)
                except CelCompileError:
                    self.runs = -(2**62)  # too large to compile: keep binding
        return variables.evaluate(self)


class VariableScope:
    """One policy's `variables`, in declaration order, and the expressions compiled against them.

    A variable is bound: its readers declare `variables.<name>` with the variable's type. One whose
    type is optional or a type, which cannot be declared again, has its text substituted where it
    is read instead.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(sorted(set(names)))
        self.variables: list[_Variable] = []
        self._latest: dict[str, _Variable] = {}
        self._composed: dict[tuple[str, int], CelProgram | CelCompileError] = {}

    def latest(self, name: str) -> _Variable | None:
        """The definition `variables.<name>` means after the last variable (a name may repeat)."""
        return self._latest.get(name)

    def define(self, where: str, name: str, expression: str) -> None:
        """Compile the next variable (it sees the variables defined before it)."""
        program = self.compile(where, expression)
        result_type = program.program.result_type
        type_name = str(result_type.name())
        substituted = "optional_type" in type_name or "TYPE" in type_name
        checked = any(v.checked for v in program.needs) or _may_hide_values(program.text)
        identity = _definition_id(self.names, program.text, tuple(v.id for v in program.needs))
        variable = _Variable(name, len(self.variables), program,
                             _Declared(_QUALIFIED + name, type_name, result_type),
                             program.text if substituted else None, checked, identity)
        self.variables.append(variable)
        self._latest[name] = variable

    def compile(self, where: str, expression: str, with_variables: bool = True) -> ScopedProgram:
        """Compile an expression that may read the variables defined so far."""
        visible = self._latest if with_variables else {}
        try:
            needs: dict[str, _Variable] = {}
            definitions: dict[str, str] = {}
            # Substitute every variable if two definitions of one name are read, or if `has()` is
            # applied to a variable itself (a presence test of its text, not of an identifier).
            hidden = False
            for name in variable_references(expression):
                variable = visible.get(name)
                if variable is None:
                    raise CelCompileError(expression, f"undefined variable {name!r} "
                                                      f"(variables.{name})")
                if variable.substituted is not None:
                    definitions[name] = variable.substituted
                reads = variable.program.needs if variable.substituted is not None else (variable,)
                for read in reads:
                    hidden |= needs.setdefault(read.name, read) is not read
            if hidden or _tests_presence_of_variable(expression):
                needs.clear()
                text = self._substituted(expression, len(self.variables))
            else:
                text = compose_variables(expression, definitions, keep=needs)
            declared = tuple(sorted((v.declared for v in needs.values()), key=lambda d: d.name))
            program = _compile(text, self.names, declared)
        except CelCompileError as error:
            raise CelCompileError(expression, f"{where}: {error.reason}") from None
        return ScopedProgram(expression, text, program, self, list(needs.values()), hidden)

    @cached_property
    def bindable(self) -> tuple[tuple[tuple[str, str, int], ...], Any]:
        """The variables an activation can bind (qualified name, name, definition id) and the
        environment declaring them: its activations serve every expression of the policy. Asked
        once the policy is compiled."""
        final = [v for v in self._latest.values() if v.substituted is None]
        declared = tuple(sorted((v.declared for v in final), key=lambda d: d.name))
        variables = tuple((v.declared.name, v.name, v.id) for v in final)
        return variables, _environment(self.names, declared)

    def composed(self, program: ScopedProgram) -> CelProgram:
        """`program` with every variable's text substituted (the API server's lazy evaluation
        within one expression); CelCompileError when that text is too large to compile."""
        if program.composed:
            return program.program
        key = (program.expression, program.visible)
        found = self._composed.get(key)
        if found is None:
            try:
                text = self._substituted(program.expression, program.visible)
                found = compile_expression(text, self.names)
            except CelCompileError as error:
                found = error
            self._composed[key] = found
        if isinstance(found, CelCompileError):
            raise found
        return found

    def _substituted(self, expression: str, visible: int) -> str:
        definitions: dict[str, str] = {}
        for variable in self.variables[:visible]:
            definitions[variable.name] = compose_variables(variable.program.expression,
                                                           definitions)
        return compose_variables(expression, definitions)


class _RequestVariables:
    """One policy's variables for one request. Values and activations live in the
    PreparedActivation, so equal definitions of other policies share them."""

    def __init__(self, scope: VariableScope, base: PreparedActivation, alone: bool) -> None:
        self._scope = scope
        self._base = base
        self.alone = alone  # the first policy evaluated for the request
        self._settled = base.settled
        self._holds: dict[str, int] = {}
        self._activation: Any = None

    def evaluate(self, program: ScopedProgram) -> Any:
        """The program's value; reading a failed variable is that variable's error."""
        try:
            return _python(self._run(program))
        except CelEvaluationError as failure:
            raise CelEvaluationError(self._unmasked(failure.reason)) from None

    def _unmasked(self, reason: str) -> str:
        """A failed variable is left unbound, so reading it reports a missing name."""
        missing = _MISSING.fullmatch(reason)
        variable = self._scope.latest(missing.group(1)) if missing else None
        state, value = self._settled.get(variable.id, (None, None)) if variable else (None, None)
        return str(value) if state == _FAILED else reason

    def _run(self, program: ScopedProgram) -> Any:
        """Evaluate with the variables it reads evaluated first, then bound."""
        if program.inlined:
            return self._run_composed(program)
        settled = self._settled
        for variable in program.needs:
            if variable.id not in settled:
                self._settle(variable)
        wanted: tuple[tuple[str, int | None], ...] = program.bindings
        for variable in program.needs:
            state = settled[variable.id][0]
            if state == _OPAQUE:
                return self._run_composed(program)
            if state != _BOUND:  # failed: it must stay unbound
                wanted = tuple((name, identity if settled[identity][0] == _BOUND else None)
                               for name, identity in program.bindings)
        if all(identity is None for _, identity in wanted):
            return program.program.run(self._base)
        if not all(self._holds.get(name) == identity for name, identity in wanted):
            self._holds, self._activation = self._activation_for(wanted)
        return program.program.run_native(self._activation)

    def _run_composed(self, program: ScopedProgram) -> Any:
        try:
            return self._scope.composed(program).run(self._base)
        except CelCompileError as error:
            raise CelEvaluationError(error.reason) from None

    def _activation_for(self, wanted: tuple[tuple[str, int | None], ...]
                        ) -> tuple[dict[str, int], Any]:
        """An activation binding exactly these definitions to these names (None: unbound): one
        made for another expression or policy if it does, else a new one binding every value of
        this policy known so far."""
        holders = self._base.holders
        candidates = min((holders.get(pair, []) for pair in wanted if pair[1] is not None), key=len)
        for holds, activation in reversed(candidates):
            if all(holds.get(name) == identity for name, identity in wanted):
                return holds, activation
        variables, environment = self._scope.bindable
        data = {name: self._base.data.get(name) for name in self._scope.names}
        holds = {}
        for qualified, name, identity in variables:
            outcome = self._settled.get(identity)
            if outcome is not None and outcome[0] == _BOUND:
                data[qualified] = outcome[1]
                holds[name] = identity
        activation = environment.Activation(data)
        for pair in holds.items():
            holders.setdefault(pair, []).append((holds, activation))
        return holds, activation

    def _settle(self, variable: _Variable) -> None:
        try:
            outcome = _BOUND, _bindable(self._run(variable.program), variable)
        except CelEvaluationError as failure:
            outcome = _FAILED, self._unmasked(failure.reason)
        except _Unbindable:
            outcome = _OPAQUE, None
        self._settled[variable.id] = outcome


def _bindable(result: Any, variable: _Variable) -> Any:
    """The Python value to bind for a variable's result; CelEvaluationError if it failed."""
    kind = result.type()
    if kind == cel.Type.ERROR:
        try:
            reason = str(result.value())
        except TypeError:
            raise _Unbindable from None  # an optional value
        raise CelEvaluationError(reason)
    if kind == cel.Type.LIST or kind == cel.Type.MAP:
        if variable.checked:
            return _checked(result)
        value = result.plain_value()
        stack = [value]
        while stack:
            item = stack.pop()
            if type(item) not in _JSON_TYPES:
                raise _Unbindable
            if type(item) is dict:
                stack.extend(item.values())
            elif type(item) is list:
                stack.extend(item)
        return value
    if kind == cel.Type.TYPE or (kind in _EXACT_TYPES
                                 and kind.name() != variable.declared.type_name):
        raise _Unbindable
    return result.plain_value()


def _checked(value: Any) -> Any:
    kind = value.type()
    if kind == cel.Type.LIST:
        return [_checked(item) for item in value.value()]
    if kind == cel.Type.MAP:
        return {key: _checked(item) for key, item in value.value().items()}
    if kind == cel.Type.ERROR or kind == cel.Type.TYPE or kind in _EXACT_TYPES:
        raise _Unbindable
    return value.value()


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
    """One `validations[]` entry, compiled (expression and message read the policy variables)."""

    expression: str
    program: ScopedProgram
    message: str
    message_program: ScopedProgram | None
    reason: str


@dataclass(frozen=True)
class CelPolicyExpressions:
    """The CEL parts admission policies share: matchConditions, variables, validations and
    auditAnnotations (the `spec` of ValidatingAdmissionPolicy and Kyverno ValidatingPolicy)."""

    match_conditions: tuple[tuple[str, CelProgram], ...]
    validations: tuple[CelValidation, ...]
    audit_annotations: tuple[tuple[str, ScopedProgram], ...]

    @classmethod
    def compile(cls, spec: Mapping[str, Any], names: Sequence[str]) -> CelPolicyExpressions:
        """Compile a policy spec; raises CelCompileError naming the failing field."""
        scope = VariableScope(names)
        for index, variable in enumerate(spec.get("variables") or []):
            scope.define(f"spec.variables[{index}]", str(variable["name"]),
                         str(variable["expression"]))
        conditions = tuple(
            (str(c["name"]), scope.compile(f"spec.matchConditions[{i}]", str(c["expression"]),
                                           with_variables=False).program)
            for i, c in enumerate(spec.get("matchConditions") or [])
        )
        validations = tuple(
            _validation(f"spec.validations[{i}]", v, scope)
            for i, v in enumerate(spec.get("validations") or [])
        )
        annotations = tuple(
            (str(a["key"]), scope.compile(f"spec.auditAnnotations[{i}]", str(a["valueExpression"])))
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


def _validation(where: str, entry: Mapping[str, Any], scope: VariableScope) -> CelValidation:
    expression = str(entry["expression"])
    message_expression = entry.get("messageExpression")
    return CelValidation(
        expression=expression,
        program=scope.compile(f"{where}.expression", expression),
        message=str(entry.get("message") or ""),
        message_program=None if not message_expression else scope.compile(
            f"{where}.messageExpression", str(message_expression)
        ),
        reason=str(entry.get("reason") or ""),
    )


# --- variable references and composition (the text of variables, substituted) -------------------

# A comment, or a string literal's optional r/b prefix and opening quote (not inside a name).
_LITERAL_START = re.compile(r"""//[^\n]*|(?<!\w)(?i:[rb]{1,2})?('''|\"\"\"|'|")""")
_VARIABLE_REF = re.compile(r"\bvariables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_PRESENCE_OF_VARIABLE = re.compile(r"\bhas\s*\(\s*variables\s*\.\s*[A-Za-z_][A-Za-z0-9_]*\s*\)")
_ESCAPED_UNTIL = {quote: re.compile(r"(?s)(?:[^\\]|\\.)*?" + quote)
                  for quote in ("'''", '"""', "'", '"')}


@lru_cache(maxsize=8192)
def variable_references(expression: str) -> tuple[str, ...]:
    """The names of the variables an expression reads (`variables.<name>` outside literals and
    comments, not a field of something else), in order of first appearance."""
    names: dict[str, None] = {}
    for code, _ in _split_literals(expression):
        for match in _VARIABLE_REF.finditer(code):
            if not _is_member_access(code, match.start()):
                names.setdefault(match.group(1))
    return tuple(names)


def compose_variables(expression: str, definitions: Mapping[str, str],
                      keep: Collection[str] = ()) -> str:
    """`expression` with every `variables.<name>` replaced by that (already composed) definition.

    `definitions` maps a variable name to its composed expression; a reference to a name that is
    not defined (in Kubernetes: not defined *earlier*) is a compile error, unless it is one to
    `keep` as it is.
    """
    if not definitions and len(expression) <= _MAX_COMPOSED_CHARS and all(
        name in keep for name in variable_references(expression)
    ):
        return expression
    pieces: list[str] = []
    substitute = partial(_definition, definitions=definitions, keep=keep)
    for code, literal in _split_literals(expression):
        pieces.append(_VARIABLE_REF.sub(partial(substitute, code=code), code))
        pieces.append(literal)
    composed = "".join(pieces)
    if len(composed) > _MAX_COMPOSED_CHARS:
        raise CelCompileError(expression, "variables nest too deeply to compose offline")
    return composed


@lru_cache(maxsize=8192)
def _tests_presence_of_variable(expression: str) -> bool:
    """Whether the code applies `has()` to a variable itself (`has(variables.x)`)."""
    return any(_PRESENCE_OF_VARIABLE.search(code) for code, _ in _split_literals(expression))


@lru_cache(maxsize=8192)
def _may_hide_values(expression: str) -> bool:
    """Whether the code (not its literals) can make an optional or uint value."""
    return any(_HIDDEN_VALUES.search(code) for code, _ in _split_literals(expression))


def _definition(match: re.Match[str], code: str, definitions: Mapping[str, str],
                keep: Collection[str]) -> str:
    name = match.group(1)
    if _is_member_access(code, match.start()) or (name in keep and name not in definitions):
        return match.group(0)
    if name not in definitions:
        raise CelCompileError(code, f"undefined variable {name!r} (variables.{name})")
    return f"({definitions[name]}\n)"  # the newline ends a trailing `//` comment


def _is_member_access(code: str, start: int) -> bool:
    """`x.variables.y` selects a field named `variables`; it is not the variables object."""
    return code[:start].rstrip().endswith(".")


@lru_cache(maxsize=8192)
def _split_literals(expression: str) -> tuple[tuple[str, str], ...]:
    """(code, following string literal or comment) pairs, so rewriting never touches literals."""
    parts: list[tuple[str, str]] = []
    position = 0
    while (found := _LITERAL_START.search(expression, position)) is not None:
        end = _literal_end(expression, found) if found.group(1) else found.end()
        parts.append((expression[position:found.start()], expression[found.start():end]))
        position = end
    parts.append((expression[position:], ""))
    return tuple(parts)


def _literal_end(expression: str, match: re.Match[str]) -> int:
    """Where a literal ends: after its closing quote (a backslash escapes the next character
    unless the literal is raw), or at the end of an unterminated one."""
    quote = match.group(1)
    if "r" in match.group(0)[: match.start(1) - match.start()].lower():
        end = expression.find(quote, match.end())
        return len(expression) if end < 0 else end + len(quote)
    closed = _ESCAPED_UNTIL[quote].match(expression, match.end())
    return closed.end() if closed else len(expression)
