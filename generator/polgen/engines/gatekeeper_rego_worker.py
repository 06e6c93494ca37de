"""The Rego side of the offline Gatekeeper engine, run as its own process (a script: it imports
regopy and the standard library only, never polgen).

rego-cpp and the CEL runtime cannot share a process cleanly: loaded after cel-expr-python, rego-cpp
never gets back memory it frees (about 60 KiB per query, 2 GiB for a 1,000-manifest scan); loaded
first, it breaks cel-expr-python (`munmap_chunk(): invalid pointer`). Here rego-cpp is alone.

Protocol: one JSON request per line on the inherited descriptor given as argv[1], one JSON answer
per line on argv[2]. `build` compiles modules into a bundle and answers its id (or a rego-cpp
error text); `review` sets the input term once and answers, for each (bundle, entry point)
query, `["ok", expressions]`, `["failed", null]` (an error term) or `["invalid", reason]` (output
regopy cannot read as JSON). rego-cpp logs to stdout, which is therefore not the channel.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import regopy


def _interpreter() -> regopy.Interpreter:
    # Errors come back as exceptions and outputs: no logging, and a built-in error must fail the
    # query rather than read as "no violation".
    interpreter = regopy.Interpreter()
    interpreter.log_level = regopy.LogLevel.NONE
    interpreter.strict_built_in_errors = True
    return interpreter


def _build(bundles: dict[int, regopy.Bundle], request: dict[str, Any]) -> dict[str, Any]:
    interpreter = _interpreter()
    try:
        for name, text in request["modules"]:
            interpreter.add_module(name, text)
        bundle = interpreter.build(None, request["entrypoints"])
    except regopy.RegoError as exc:
        return {"error": str(exc)}
    bundles[len(bundles)] = bundle
    return {"id": len(bundles) - 1}


def _review(
    runner: regopy.Interpreter, bundles: dict[int, regopy.Bundle], request: dict[str, Any]
) -> dict[str, Any]:
    runner.set_input_term(request["input"])
    outputs: list[list[Any]] = []
    for bundle, entrypoint in request["queries"]:
        try:
            output = runner.query_bundle_entrypoint(bundles[bundle], entrypoint)
        except ValueError as exc:
            outputs.append(["invalid", str(exc)])
            continue
        if not output.ok():
            outputs.append(["failed", None])
        else:
            outputs.append(["ok", output.results[0].expressions if output.results else []])
    return {"outputs": outputs}


def main() -> None:
    """Serve requests until the engine closes the channel."""
    requests = os.fdopen(int(sys.argv[1]), "r", encoding="utf-8")
    answers = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8")
    bundles: dict[int, regopy.Bundle] = {}
    runner = _interpreter()
    for line in requests:
        request = json.loads(line)
        try:
            if request["op"] == "build":
                answer = _build(bundles, request)
            else:
                answer = _review(runner, bundles, request)
        except regopy.RegoError as exc:
            answer = {"error": str(exc)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
