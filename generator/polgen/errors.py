"""User-facing errors: each problem names a file, a line where known, and what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can."""

    file: str
    message: str
    line: int | None = None
    where: str | None = None

    def __str__(self) -> str:
        location = self.file if self.line is None else f"{self.file}:{self.line}"
        subject = f" {self.where}:" if self.where else ""
        return f"{location}:{subject} {self.message}"


class PolgenError(Exception):
    """Bad input or usage: reported as one line per problem, exit code 2, no traceback."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def single(
        cls, file: str | Path, message: str, line: int | None = None, where: str | None = None
    ) -> PolgenError:
        return cls([Problem(str(file), message, line, where)])
