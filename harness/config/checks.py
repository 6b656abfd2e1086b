"""How a setting is declared and checked: its default, help, role and check (:func:`setting`), the
checks themselves (each returns what is wrong with a value, or None), and the flag that names it.

Roles: ``hparam`` (changes the trained model: recorded, hashed into the config id, checked on
resume), ``objective`` (an ``hparam`` that picks the loss: left out of the config id, so SFT and DFT of
one configuration pair up) and ``run`` (where, how fast, how watched; never a hyperparameter).

>>> at_least(1)(0), positive(2.0)
('must be >= 1, got 0', None)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import field, fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

HPARAM, OBJECTIVE, RUN = "hparam", "objective", "run"


def positive(value) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        return f"must be a positive number, got {value!r}"
    return None


def at_least(low: int) -> Callable[[Any], str | None]:
    def check(value) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number >= {low}, got {value!r}"
        if value < low:
            return f"must be >= {low}, got {value!r}"
        return None

    return check


def non_negative(value) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        return f"must be >= 0, got {value!r}"
    return None


def fraction(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        return f"must be in [0, 1], got {value!r}"
    return None


def open_fraction(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        return f"must be in (0, 1), got {value!r}"
    return None


def below_one(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        return f"must be in [0, 1), got {value!r}"
    return None


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def makeable_folder(value) -> str | None:
    """What stops ``value`` from being made and written as a folder (a file on its path, a folder
    that is not writable), found without making anything: a command refuses it before any work."""
    path = Path(os.path.abspath(value))
    # lexists and isdir answer False where the path cannot be looked at (a folder above it that
    # cannot be entered), so that case is named by the access check, never a traceback.
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))  # the root always exists
    if not os.path.isdir(existing):
        return f"cannot be made: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot be written: {existing} is not writable"
    return None


def setting(default, help: str, *, role: str = HPARAM, check=None, choices=None, **marks) -> Any:
    """A config field: its default, help text, role (``hparam``, ``objective`` or ``run``), the check
    of its value (skipped for ``None``), argparse choices, and marks (``axis``, ``per_method``)."""
    if choices is not None and check is None:
        check = one_of(choices)
    metadata = {"help": help, "role": role, "check": check, "choices": choices, **marks}
    if isinstance(default, list):  # a fresh list per instance
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_fields(config) -> None:
    """Raise :class:`ConfigError` for the first field whose value fails its check, naming its flag.
    A list is checked value by value (a sweep's ``--lr 1e-3 -1``)."""
    for f in fields(config):
        check, value = f.metadata.get("check"), getattr(config, f.name)
        if check is None or value is None:
            continue
        for each in value if isinstance(value, list) else [value]:
            problem = check(each)
            if problem:
                raise ConfigError(f"{flag(f.name)} {problem}")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_names(cls: type, *roles: str, **marks) -> tuple[str, ...]:
    """The fields of ``cls`` with one of ``roles`` (any role if none given) and all of ``marks``."""
    return tuple(
        f.name
        for f in fields(cls)
        if (not roles or f.metadata.get("role") in roles)
        and all(f.metadata.get(mark) == value for mark, value in marks.items())
    )
