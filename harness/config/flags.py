"""The flag builder: one ``--field-name`` per config field, with its help, choices and default, and the
way back from a config to its command line.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from harness.config.checks import flag
from harness.errors import ConfigError

T = TypeVar("T")


# Flags that were renamed or folded into another, and what to give now: refused in one line.
RETIRED = {
    "--method": "give the methods with --methods, space-separated (--methods base sft dft)",
    "--base": "the base is a method: --methods base sft dft evaluates it, without base it is not",
    "--no-base": "the base is a method: leave base out of --methods (--methods sft dft)",
    "--warmup-rows": "the ladder is built to the starts' own scores: --start-scores 50 70",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the flag (not the 40-line usage), raised as
    a :class:`harness.errors.ConfigError`: a flag argparse refuses and one the harness refuses read
    the same (``error: ...``, exit status 1, through :func:`harness.errors.command`)."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see --help)")

    def parse_known_args(self, args=None, namespace=None):
        given = list(sys.argv[1:] if args is None else args)
        for arg in given:
            old = arg.split("=", 1)[0]
            if old in RETIRED:
                raise ConfigError(f"{old} is gone: {RETIRED[old]} (see --help)")
        return super().parse_known_args(given, namespace)


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``list[float] | None`` -> list[float]."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    return annotation


def add_arguments(parser, cls: type, defaults: dict[str, Any] | None = None, exclude=frozenset()) -> None:
    """One ``--field-name`` flag per field of ``cls`` (but ``exclude``), with its help, choices and
    default (``defaults`` overrides, e.g. a preset's values). ``bool`` fields get ``--no-...``;
    ``list[...]`` fields take one or more values."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not MISSING else None
        if f.default_factory is not MISSING:
            default = f.default_factory()
        if defaults and f.name in defaults:
            default = defaults[f.name]
        kind = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if kind is bool:
            parser.add_argument(
                flag(f.name), action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
            continue
        nargs = None
        if typing.get_origin(kind) is list:
            kind, nargs = typing.get_args(kind)[0], "*" if f.metadata.get("may_be_empty") else "+"
        parser.add_argument(
            flag(f.name),
            type=_typed(kind, flag(f.name), listed=nargs is not None),
            nargs=nargs,
            default=default,
            choices=choices,
            help=help_text if default is None else f"{help_text} (default: {default})",
        )


def _typed(kind: type, name: str, listed: bool = False) -> Callable[[str], Any]:
    """An argparse type whose error names the flag: ``--lr takes numbers; 'x' is not one``. A list's
    values are separated by spaces, as ``--seeds 0 1 2``: a comma is refused naming that form."""
    if kind is str:
        if not listed:
            return str

        def text(value: str) -> str:
            if "," in value:
                spaced = " ".join(part for part in value.split(",") if part)
                raise argparse.ArgumentTypeError(
                    f"{name} takes its values separated by spaces: {name} {spaced} (not {value!r})"
                )
            return value

        text.__name__ = "str"
        return text

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise argparse.ArgumentTypeError(f"{name} takes {what}; {text!r} is not one") from None

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def to_flags(config) -> list[str]:
    """The command line that parses back to ``config`` (the inverse of :func:`add_arguments`; a
    ``None`` value is left to its default). ``torchrun`` gets a training configuration this way.

    >>> from harness.config import TrainConfig
    >>> to_flags(TrainConfig(lr=1e-3, packing=False))[:4]
    ['--output-dir', 'runs/train', '--task', 'math-words']
    >>> "--no-packing" in to_flags(TrainConfig(packing=False))
    True
    """
    flags = []
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            flags.append(flag(f.name) if value else "--no-" + flag(f.name)[2:])
        elif isinstance(value, list):
            flags += [flag(f.name), *map(str, value)]
        else:
            flags += [flag(f.name), str(value)]
    return flags


def config_from(args: dict[str, Any], cls: type[T], skip=frozenset(), **fixed) -> T:
    """Build ``cls`` from the parsed values of its fields (popped from ``args``; but ``skip``) and ``fixed``."""
    values = {f.name: args.pop(f.name) for f in fields(cls) if f.name not in skip and f.name not in fixed}
    return cls(**values, **fixed)


def parse(cls: type[T], argv: list[str] | None = None, description: str = "", defaults=None) -> T:
    """``cls`` from a command line of its own fields (the builders' configs use it).

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Config:
    ...     lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    ...     steps: int | None = None
    ...     packing: bool = True
    >>> parse(Config, ["--lr", "2e-4", "--no-packing"])
    Config(lr=0.0002, steps=None, packing=False)
    """
    parser = Parser(description=description)
    add_arguments(parser, cls, defaults)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return cls(**vars(args))
