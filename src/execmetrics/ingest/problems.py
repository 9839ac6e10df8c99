"""Problems found in input, each pinned to a file, line and column."""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPORTED = 100


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return (
            f"{where}: {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"
        )

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "file": self.source,
            "line": self.line,
            "column": self.column,
            "reason": self.reason,
        }


class RowError(ValueError):
    """A field of one input row is invalid."""

    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


class IngestError(Exception):
    """Input was refused; nothing was written."""

    def __init__(self, problems: list[Problem], total: int | None = None) -> None:
        self.problems = problems[:MAX_REPORTED]
        self.total = total if total is not None else len(problems)
        super().__init__(self.summary())

    def summary(self) -> str:
        lines = [str(p) for p in self.problems]
        if self.total > len(self.problems):
            lines.append(f"... and {self.total - len(self.problems)} more problems")
        return "\n".join(lines)


class ProblemLog:
    """Collects problems, keeping the first MAX_REPORTED and counting the rest."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.total = 0

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)

    def add_counted(self, shown: list[Problem], total: int) -> None:
        """Problems a query found: the first few of them, and how many there are in all."""
        for problem in shown:
            self.add(problem)
        self.total += total - len(shown)

    def raise_if_any(self) -> None:
        if self.total:
            raise IngestError(self.problems, self.total)
