"""The engine's handle on the Rego worker processes (`gatekeeper_rego_worker`, see why there).

One pool of workers, one per usable CPU (at most four), serves the whole Python process: started
on the first template compiled, stopped when their requests channels close (at exit). Every worker
compiles every bundle; a review's queries are dealt round-robin to the workers, which evaluate
them side by side, and the answers are put back in query order.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
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
    """Workers holding the same bundles, sharing each review's queries."""

    def __init__(self, size: int) -> None:
        self._workers = [RegoProcess() for _ in range(size)]

    def _gather(self, workers: list[RegoProcess]) -> list[dict[str, Any]]:
        # Every sent request is answered before any error is raised, so the channels stay in step.
        answers = [worker.receive() for worker in workers]
        for answer in answers:
            if "error" in answer:
                raise WorkerError(str(answer["error"]))
        return answers

    def build(self, modules: dict[str, str], entrypoints: list[str]) -> int:
        """Compile the modules into a bundle with these entry points; its id in the workers."""
        request = {"op": "build", "modules": list(modules.items()), "entrypoints": entrypoints}
        for worker in self._workers:
            worker.send(request)
        ids = {int(answer["id"]) for answer in self._gather(self._workers)}
        if len(ids) != 1:
            raise WorkerError(f"the Rego workers disagree on bundle ids {sorted(ids)}")
        return ids.pop()

    def review(self, term: str, queries: list[tuple[int, str]]) -> list[list[Any]]:
        """Set `term` as input, then run each (bundle, entry point): one answer each, in order."""
        busy = self._workers[: len(queries)]
        for offset, worker in enumerate(busy):
            worker.send({"op": "review", "input": term, "queries": queries[offset :: len(busy)]})
        answers: list[list[Any]] = [[] for _ in queries]
        for offset, answer in enumerate(self._gather(busy)):
            answers[offset :: len(busy)] = answer["outputs"]
        return answers


_POOL: list[RegoPool] = []


def worker() -> RegoPool:
    """The process's pool of Rego workers, started on first use."""
    if not _POOL:
        _POOL.append(RegoPool(max(1, min(4, len(os.sched_getaffinity(0))))))
    return _POOL[0]
