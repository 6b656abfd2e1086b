"""Flat dataclass configs as command-line flags: each field becomes ``--field-name`` with its help.

>>> from dataclasses import dataclass, field
>>> @dataclass
... class Config:
...     lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
...     steps: int | None = None
...     packing: bool = True
>>> parse(Config, ["--lr", "2e-4", "--no-packing"])
Config(lr=0.0002, steps=None, packing=False)
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _base_type(annotation: Any) -> type:
    """``int | None`` -> int; ``Literal[...]`` -> str."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    if origin is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation


def add_arguments(
    parser: argparse.ArgumentParser, cls: type, defaults: dict[str, Any] | None = None, exclude=frozenset()
) -> None:
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in exclude:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if defaults and f.name in defaults:
            default = defaults[f.name]
        kind = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            parser.add_argument(
                flag,
                type=kind,
                default=default,
                choices=choices,
                help=help_text if default is None else f"{help_text} (default: {default})",
            )


def parse(cls: type[T], argv: list[str] | None = None, description: str = "", defaults=None) -> T:
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser, cls, defaults)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return cls(**vars(args))
