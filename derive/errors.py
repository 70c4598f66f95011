"""The errors users see: a problem with what they gave us and where it is, or generated code that failed."""

from __future__ import annotations


class DeriveError(Exception):
    """Bad input or an unusable output path. The CLI prints `where: problem` and exits 2."""

    def __init__(self, problem: str, where: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}" if self.where else self.problem

    def at(self, where: str) -> DeriveError:
        """The same problem, located more precisely (outer context first)."""
        inner = f"{where}: {self.where}" if self.where else where
        return DeriveError(self.problem, inner)


class GeneratedCodeError(Exception):
    """Generated code that would not import or raised when `derive check` ran it: a bug in derive, not in
    the input. The CLI prints one line and exits 1, as for gradients that disagree."""
