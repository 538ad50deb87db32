"""Errors that mean "the input is wrong", as opposed to bugs.

The CLI turns an ``InputError`` into one line on stderr, ``radsynth: error: <where>: <problem>``,
and exit code 2, with no traceback. Library callers catch it like any exception.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: a missing or corrupt file, a wrong shape, a value out of range.

    ``where`` names the file (or option) at fault; ``problem`` says what is wrong with it.
    """

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class NonFiniteLoss(RuntimeError):
    """A training loss became NaN or infinite; the run stopped and kept its last good checkpoint."""
