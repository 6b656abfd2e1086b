"""The harness's errors: one family, so every command prints one line and exits 1 for any of them
(:func:`command`, the one entry wrapper every ``main`` is made with).

A :class:`HarnessError` is a problem with what the user asked for or gave (a flag, a file, a row, a
model folder, a run that cannot go on), and its message names the flag, file or row at fault on one
line. Anything else that escapes a command is a bug and keeps its traceback.

>>> str(ConfigError("--lr must be a positive number, got -1"))
'--lr must be a positive number, got -1'
>>> isinstance(DataError("x"), ValueError), isinstance(ModelNotFound("x"), FileNotFoundError)
(True, True)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence

Main = Callable[[Sequence[str] | None], int]


class HarnessError(Exception):
    """The family: a message of one line that names what is at fault."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())  # one line, whatever was joined into it


class ConfigError(HarnessError, ValueError):
    """A flag or setting that cannot work (``--lr -1``, ``--batch-size 7`` over 2 ranks, a changed
    hyperparameter on ``--resume``)."""


class DataError(HarnessError, ValueError):
    """A dataset problem, naming the source and the row."""


class ModelNotFound(HarnessError, FileNotFoundError):
    """``--model`` names no model folder, embedded model or reachable hub id."""


class ModelError(HarnessError, ValueError):
    """A model that loads but cannot be used as asked (no chat template)."""


class RecordError(HarnessError, ValueError):
    """A run record that is malformed, foreign or of another schema, naming the file or field."""


class TrainingError(HarnessError, RuntimeError):
    """The run cannot go on (a non-finite loss, a failed training process)."""


def command(main: Main) -> Main:
    """A command's entry point (``python -m harness.<command>``): a :class:`HarnessError` raised
    anywhere in ``main``, a bad flag included (the parsers raise :class:`ConfigError`), is its one
    line on stderr, ``error: ...``, and exit status 1. Anything else is a bug and keeps its traceback.

    >>> @command
    ... def main(argv=None):
    ...     raise ConfigError("--lr must be a positive number, got -1")
    >>> main([])  # prints: error: --lr must be a positive number, got -1
    1
    """

    @functools.wraps(main)
    def entry(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except HarnessError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return entry
