"""The side of a code check that runs inside the sandbox, beside the untrusted program.

:mod:`harness.sandbox.check` copies this file into the sandbox as ``program.py`` and the model's program
as ``candidate.py``; never imported there with anything else (standard library only). It loads the
candidate, says whether that worked, then answers calls: one JSON line in (``{"call": name,
"args": [...]}``, and ``"reduce": "not_none"`` where only whether the answer is ``None`` is checked),
one JSON line out (``{"value": ...}`` or ``{"raised": "Type: message"}``).
The tests and their expected values never come here: the checker sends inputs one call at a time and
compares the answers itself. Whatever the candidate does to this process (patches builtins or this
file's functions, exits, prints) it can only change what comes back, and what comes back is decoded
by the checker into plain values, so an object whose ``__eq__`` always says yes cannot cross.

Values travel as JSON with tags for what JSON lacks (``encode``/``decode``, used on both sides):

>>> decode(json.loads(json.dumps(encode({"a": (1, 2.5), 3: {4}, "b": [None, True, b"x"]}))))
{'a': (1, 2.5), 3: {4}, 'b': [None, True, b'x']}
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback

MAX_DEPTH = 200  # nesting levels (MBPP+ nests dicts 27 deep); Python's recursion allows 1,000
# Bytes of one answer; a longer one is a failed call, so a runaway program cannot fill the harness
# (parsing 1 MiB of "[[],[],..." costs ~50 MB). Tests whose right answers are larger say so
# (``max_answer_bytes``: HumanEval+'s string_sequence(1000011) is 6.9 MB).
MAX_LINE = 1 << 20


class Unencodable(TypeError):
    """A value that is not plain data (None, bool, int, float, complex, str, bytes, list, tuple, set,
    dict)."""


# A subclass of a plain type crosses as that plain type, its content read through the plain type's
# own methods (``dict.items(value)``), so an override can change what it says, never what it is:
# a ``Counter`` or ``OrderedDict`` answer arrives as the dict it holds, a named tuple as a tuple, an
# ``int`` subclass whose ``__eq__`` always says yes as its plain number.
_PLAIN = {
    int: int.__int__,
    float: float.__float__,
    str: str.__str__,
    bytes: bytes.__bytes__,
    list: lambda value: list(list.__iter__(value)),
    tuple: lambda value: tuple(tuple.__iter__(value)),
    set: lambda value: set(set.__iter__(value)),
    frozenset: lambda value: frozenset(frozenset.__iter__(value)),
    dict: lambda value: {k: v for k, v in dict.items(value)},
}


def encode(value, depth: int = 0):
    """Plain data to JSON-ready data; a subclass of a plain type as that type (``_PLAIN``), so a
    forged ``__eq__`` never crosses."""
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deeply")
    kind = type(value)
    if kind not in _PLAIN and kind is not bool:
        base = next((plain for plain in _PLAIN if isinstance(value, plain)), None)
        if base is not None:
            value, kind = _PLAIN[base](value), base
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        # In hex: decimal conversion of an int over 4,300 digits raises (CVE-2020-10735), hex does not.
        return value if abs(value) < 2**53 else {"int": hex(value)}
    if kind is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"tuple": [encode(item, depth + 1) for item in value]}
    if kind in (set, frozenset):
        return {kind.__name__: [encode(item, depth + 1) for item in value]}
    if kind is dict:
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [encode(value.real, depth + 1), encode(value.imag, depth + 1)]}
    raise Unencodable(f"returned a {kind.__name__}, which is not plain data")


def decode(data, depth: int = 0):
    """The inverse of :func:`encode`; anything else raises ``ValueError``."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    kind = type(data)
    if data is None or kind in (bool, str, float):
        return data
    if kind is int:
        return data
    if kind is list:
        return [decode(item, depth + 1) for item in data]
    if kind is dict and len(data) == 1:
        ((tag, inner),) = data.items()
        if tag == "int" and type(inner) is str:
            return int(inner, 16)
        if tag == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if tag == "bytes" and type(inner) is str:
            return bytes.fromhex(inner)
        if tag == "dict" and type(inner) is list:
            # One level per dict, as encode counts it: the [key, value] pairs are not levels.
            if all(type(pair) is list and len(pair) == 2 for pair in inner):
                return {decode(k, depth + 1): decode(v, depth + 1) for k, v in inner}
        if type(inner) is list:
            items = [decode(item, depth + 1) for item in inner]
            if tag == "tuple":
                return tuple(items)
            if tag == "set":
                return set(items)
            if tag == "frozenset":
                return frozenset(items)
            if tag == "complex" and len(items) == 2 and all(type(x) in (int, float) for x in items):
                return complex(*items)
    raise ValueError(f"not an encoded value: {str(data)[:80]}")


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _without_site_hooks() -> None:
    """What ``site`` gives a program, less the environment's ``.pth`` hooks: the checker starts this
    file with ``python -S`` because those hooks (an editable install's import finder above all) were
    about a tenth of each check's CPU time (130 ms, most of it starting two interpreters). The
    candidate still imports the environment's packages and has ``exit()``, ``quit()``, ``help()``
    and ``license()``."""
    if not sys.flags.no_site:
        return
    import site  # with -S, importing site defines its functions and runs none of them

    site.setquit()
    site.setcopyright()
    site.sethelper()
    sys.path.extend(path for path in site.getsitepackages() if path not in sys.path)


def main() -> None:
    _without_site_hooks()
    # The protocol keeps the real stdin/stdout; the candidate's own prints go to stderr and its
    # input() reads nothing, so neither can break the framing.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdout = sys.stderr

    def reply(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        with open("candidate.py", encoding="utf-8") as handle:
            source = handle.read()
        exec(compile(source, "candidate.py", "exec"), namespace)
    except BaseException as error:  # SystemExit too: exiting while loading is a failed load
        traceback.print_exc()
        reply({"loaded": False, "raised": _error_text(error)})
        return
    reply({"loaded": True})
    for line in requests:
        try:
            request = json.loads(line)
            function = namespace[request["call"]]
            value = function(*decode(request["args"]))
            if request.get("reduce") == "not_none" and type(value) is not bool:
                # Answers that are not plain data (a ``re.Match``) are checked for being there only.
                value = value is not None
            reply({"value": encode(value)})
        except BaseException as error:
            reply({"raised": _error_text(error)})


if __name__ == "__main__":
    main()
