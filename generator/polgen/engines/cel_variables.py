"""Policy `variables`, compiled once and evaluated at most once per request.

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

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cel_expr_python import cel

from polgen.engines.cel_runtime import (
    Bindings,
    CelCompileError,
    CelEvaluationError,
    CelProgram,
    Declared,
    PreparedActivation,
    compile_declared,
    compile_expression,
    environment,
    plain_result,
)
from polgen.engines.cel_text import (
    compose_variables,
    may_hide_values,
    tests_presence_of_variable,
    variable_references,
)

_QUALIFIED = "variables."
_MISSING = re.compile(r'(?:[A-Z_]+: )?No value with name "variables\.(\w+)" found in Activation')
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
    declared: Declared
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
        variables = _request_variables(self.scope, data)
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
        checked = any(v.checked for v in program.needs) or may_hide_values(program.text)
        identity = _definition_id(self.names, program.text, tuple(v.id for v in program.needs))
        variable = _Variable(name, len(self.variables), program,
                             Declared(_QUALIFIED + name, type_name, result_type),
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
            if hidden or tests_presence_of_variable(expression):
                needs.clear()
                text = self._substituted(expression, len(self.variables))
            else:
                text = compose_variables(expression, definitions, keep=needs)
            declared = tuple(sorted((v.declared for v in needs.values()), key=lambda d: d.name))
            program = compile_declared(text, self.names, declared)
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
        return variables, environment(self.names, declared)

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
            return plain_result(self._run(program))
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


def _request_variables(scope: VariableScope, data: PreparedActivation) -> _RequestVariables:
    """This request's values of one policy's variables (evaluated on first need)."""
    found: _RequestVariables | None = data.scopes.get(scope)
    if found is None:
        found = data.scopes[scope] = _RequestVariables(scope, data, not data.scopes)
    return found


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
