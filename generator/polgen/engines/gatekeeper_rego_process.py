"""The engine's handle on the Rego worker processes (`gatekeeper_rego_worker`, see why there).

One pool of workers, one per usable CPU (at most four), serves the whole Python process: started
on the first template compiled, stopped when their requests channels close (at exit). Every
worker compiles every bundle, without the engine waiting (a template's compile error is read when
the engine asks for it); a review's queries are dealt round-robin to the workers, which evaluate
them side by side, and the answers are put back in query order.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import IO, Any

WORKER = Path(__file__).with_name("gatekeeper_rego_worker.py")


class WorkerError(Exception):
    """The worker refused a request (its rego-cpp error text) or died."""


class RegoProcess:
    """A started worker: compile bundles, then review inputs against their entry points."""

    def __init__(self) -> None:
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        # -P: the script's folder (polgen's engines) must not shadow regopy's imports.
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(WORKER), str(request_read), str(answer_write)],
            pass_fds=(request_read, answer_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        os.close(request_read)
        os.close(answer_write)
        self._requests: IO[str] = os.fdopen(request_write, "w", encoding="utf-8")
        self._answers: IO[str] = os.fdopen(answer_read, "r", encoding="utf-8")
        atexit.register(self.close)

    def send(self, request: dict[str, Any]) -> None:
        """Hand one request over; `receive` gets its answer."""
        try:
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except OSError as exc:
            raise WorkerError(f"the Rego worker is gone ({exc})") from exc

    def receive(self) -> dict[str, Any]:
        """The answer to the oldest request sent (an `error` key when refused)."""
        line = self._answers.readline()
        if not line:
            raise WorkerError(f"the Rego worker died (exit code {self._process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """End the worker: it stops when its requests channel closes."""
        if not self._requests.closed:
            self._requests.close()
            self._answers.close()
            self._process.wait()


class RegoPool:
    """Workers holding the same bundles. Builds are sent without waiting, so every worker compiles
    while the engine prepares the next template, and read back when asked for; a review's queries
    are dealt to the workers in turn, which evaluate them side by side."""

    def __init__(self, size: int) -> None:
        self._workers = [RegoProcess() for _ in range(size)]
        self._local: list[dict[int, int]] = [{} for _ in self._workers]  # pool id -> worker's id
        self._pending: list[deque[int]] = [deque() for _ in self._workers]
        self._failed: dict[int, str] = {}  # pool bundle id -> rego-cpp's refusal
        self._known: dict[str, int] = {}  # request text -> pool bundle id: equal bundles once

    def build(self, modules: dict[str, str], entrypoints: list[str]) -> int:
        """Start compiling the modules into a bundle with these entry points; its id. `built`
        tells whether it compiled. Equal modules and entry points give the same bundle."""
        request = {"op": "build", "modules": sorted(modules.items()), "entrypoints": entrypoints}
        key = json.dumps(request)
        if key in self._known:
            return self._known[key]
        bundle = self._known[key] = len(self._known)
        for worker, pending in zip(self._workers, self._pending, strict=True):
            worker.send(request)
            pending.append(bundle)
        return bundle

    def built(self, bundle: int) -> None:
        """Wait for the bundle; WorkerError with rego-cpp's error text if it did not compile."""
        for index, pending in enumerate(self._pending):
            while bundle in pending:
                self._settle(index)
        if bundle in self._failed:
            raise WorkerError(self._failed[bundle])

    def _settle(self, index: int) -> None:
        answer = self._workers[index].receive()
        bundle = self._pending[index].popleft()
        if "error" in answer:
            self._failed[bundle] = str(answer["error"])
        else:
            self._local[index][bundle] = int(answer["id"])

    def review(self, term: str, queries: list[tuple[int, str]]) -> list[list[Any]]:
        """Set `term` as input, then run each (bundle, entry point): one answer each, in order."""
        for bundle, _ in queries:
            self.built(bundle)
        busy = range(min(len(queries), len(self._workers)))
        for index in busy:
            while self._pending[index]:  # the channel answers in order: builds first
                self._settle(index)
            local = [(self._local[index][bundle], entry)
                     for bundle, entry in queries[index :: len(busy)]]
            self._workers[index].send({"op": "review", "input": term, "queries": local})
        answers: list[list[Any]] = [[] for _ in queries]
        failure = None
        # Every sent request is answered before any error is raised, so the channels stay in step.
        for index in busy:
            answer = self._workers[index].receive()
            if "error" in answer:
                failure = failure or str(answer["error"])
                continue
            answers[index :: len(busy)] = answer["outputs"]
        if failure is not None:
            raise WorkerError(failure)
        return answers


_POOL: list[RegoPool] = []


def worker() -> RegoPool:
    """The process's pool of Rego workers, started on first use."""
    if not _POOL:
        _POOL.append(RegoPool(max(1, min(4, len(os.sched_getaffinity(0))))))
    return _POOL[0]
