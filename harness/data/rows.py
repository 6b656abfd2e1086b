"""Training and evaluation rows: reading them from files and checking their shape.

A row is ``{"prompt": [messages], "completion": [messages]}`` (the conversational prompt/completion
format of TRL and the Hub); a message's content is a string or a list of parts, images as
``{"type": "image", "image": ...}``. A row of two strings (TRL's standard prompt/completion format)
is plain text, continued without a chat template: what a raw prompt template
(:mod:`tasks.prompts`) makes. A preference pair, what DPO trains on, is ``{"prompt", "chosen",
"rejected"}`` (TRL's preference format), each answer as a completion is. ``--train-data`` names a
file of either, or a folder made by :mod:`harness.selfgen`, whose ``rows.jsonl`` and
``pairs.jsonl`` are read as each objective needs. Every problem is a
:class:`harness.errors.DataError` naming the file and the line or row.

>>> check_row({"prompt": [{"role": "user", "content": "hi"}], "completion": []}, "rows.jsonl line 3")
Traceback (most recent call last):
...
harness.errors.DataError: rows.jsonl line 3: 'completion' is empty
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import tasks
from harness import objectives
from harness.errors import DataError
from tasks import prompts
from tasks.prompts import CHAT
from tasks.sources import digest

# A selfgen folder's files, for rows and for pairs (harness.selfgen writes them; data reads them).
SELFGEN_FILES = {False: "rows.jsonl", True: "pairs.jsonl"}
PAIR_OBJECTIVES = tuple(r.name for r in objectives.OBJECTIVE_TABLE if r.data == objectives.PAIRS)


def check_row(row: Any, where: str, answer: str = "completion") -> None:
    """Raise ``DataError`` unless ``row`` is a valid conversational prompt/completion row (its
    completion the field ``answer``: a pair's ``chosen`` or ``rejected``)."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with 'prompt' and {answer!r}, got {type(row).__name__}")
    if answer == "completion" and "completion" not in row and {"chosen", "rejected"} <= set(row):
        raise DataError(
            f"{where}: a preference pair (prompt, chosen, rejected), not a prompt/completion row: only "
            f"{' and '.join(PAIR_OBJECTIVES)} train on pairs (give a rows file, or a selfgen folder)"
        )
    if all(isinstance(row.get(field), str) for field in ("prompt", answer)):
        # Plain text (a raw prompt template's rows): the prompt is continued as it is.
        if not row[answer].strip():
            raise DataError(f"{where}: {answer!r} has no text, so there is nothing to train")
        return
    for field in ("prompt", answer):
        if field not in row:
            raise DataError(f"{where}: missing field {field!r}")
        messages = row[field]
        if not isinstance(messages, list):
            raise DataError(f"{where}: {field!r} must be a list of messages, got {type(messages).__name__}")
        if not messages:
            raise DataError(f"{where}: {field!r} is empty")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise DataError(f"{where}: {field}[{i}] must be a message with a string 'role'")
            if not isinstance(message.get("content"), (str, list)):
                raise DataError(f"{where}: {field}[{i}]['content'] must be a string or a list of parts")
    if not any(_text(m["content"]).strip() for m in row[answer]):
        raise DataError(f"{where}: {answer!r} has no text, so there is nothing to train")


def check_pair(row: Any, where: str) -> None:
    """Raise ``DataError`` unless ``row`` is a preference pair: a prompt, and a ``chosen`` and a
    ``rejected`` answer, each a valid completion of it.

    >>> check_pair({"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello"}, "p.jsonl line 2")
    Traceback (most recent call last):
    ...
    harness.errors.DataError: p.jsonl line 2: missing field 'rejected' (a preference pair is prompt, chosen and rejected)
    """
    if isinstance(row, dict):
        for side in ("chosen", "rejected"):
            if side not in row:
                raise DataError(
                    f"{where}: missing field {side!r} (a preference pair is prompt, chosen and rejected)"
                )
    for side in ("chosen", "rejected"):
        check_row(row, where, side)


def _text(content: str | list) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class Rows(list):
    """Rows read from a file, with where each came from (``file line 7``) for error messages."""

    def __init__(self, rows: list[dict[str, Any]], locations: list[str], base_dir: Path | None = None):
        super().__init__(rows)
        self.locations = locations
        self.base_dir = base_dir  # relative image paths are relative to the file's folder

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Rows(list.__getitem__(self, index), self.locations[index], self.base_dir)
        return list.__getitem__(self, index)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of row 1
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None


def read_rows(path: str | Path, pairs: bool = False) -> Rows:
    """Read and validate rows (``pairs``: preference pairs) from a ``.jsonl`` or ``.json`` file, or a
    ``.parquet`` / ``.arrow`` file (read with ``datasets``). Errors name the file and the line or
    row. CSV is not accepted: it cannot hold lists of messages."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows, locations = _read(path)
    for row, where in zip(rows, locations):
        (check_pair if pairs else check_row)(row, where)
    if not rows:
        raise DataError(f"{path}: no rows")
    return Rows(rows, locations, path.resolve().parent)


def _read(path: Path) -> tuple[list[Any], list[str]]:
    """A data file's rows, unchecked, and where each is (``file line 7``)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows, locations = [], []
        # Split on "\n" only: str.splitlines() would also split on U+2028 or U+0085, which JSON
        # allows unescaped inside strings.
        for line_no, line in enumerate(_read_text(path).split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path} line {line_no}: not valid JSON ({error.msg})") from None
            locations.append(f"{path} line {line_no}")
    elif suffix == ".json":
        try:
            rows = json.loads(_read_text(path))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of rows")
        locations = [f"{path} row {i}" for i in range(len(rows))]
    elif suffix in (".parquet", ".arrow"):
        import datasets

        rows = list(datasets.load_dataset(suffix[1:], data_files=str(path), split="train"))
        locations = [f"{path} row {i}" for i in range(len(rows))]
    else:
        hint = " (CSV cannot hold lists of messages)" if suffix == ".csv" else ""
        raise DataError(
            f"{path}: unsupported file type {suffix!r}{hint}; use .jsonl, .json, .parquet or .arrow"
        )
    return rows, locations


def load_split(task, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The examples of a task's split. A task says what is wrong with its data in a ``ValueError``
    (or a missing file in a ``FileNotFoundError``): it becomes a :class:`DataError` here."""
    try:
        return task.load(split, limit=limit)
    except (ValueError, FileNotFoundError) as error:
        raise DataError(f"task {task.name} split {split}: {error}") from None


def data_file(train_data: str | os.PathLike[str], pairs: bool = False) -> Path:
    """The file ``--train-data`` names for rows (``pairs``: for preference pairs): itself, or in a
    selfgen folder its ``rows.jsonl`` (``pairs.jsonl``)."""
    path = Path(train_data)
    if not path.is_dir():
        return path
    if not (path / "selfgen.json").is_file():  # written last: without it the folder is unfinished
        raise DataError(
            f"--train-data {path}: a folder is read as one python -m harness.selfgen made, and it has no "
            "selfgen.json (unfinished: run the selfgen command again to finish it)"
        )
    name = SELFGEN_FILES[pairs]
    if not (path / name).is_file():
        raise DataError(
            f"--train-data {path}: a folder is read as one python -m harness.selfgen made, and it has no {name}"
        )
    return path / name


def holds_pairs(train_data: str | os.PathLike[str]) -> bool:
    """Whether ``--train-data`` is a file of preference pairs (its first row has ``chosen`` and no
    ``completion``) rather than of rows, or a selfgen folder."""
    path = Path(train_data)
    if not path.is_file():
        return False
    try:
        rows, _ = _read(path)
    except DataError:
        return False  # read_rows says what is wrong with it
    return bool(rows) and isinstance(rows[0], dict) and "chosen" in rows[0] and "completion" not in rows[0]


def training_digest(task: str, train_data: str | None) -> str | None:
    """What a run's training rows are read from, as a short hash (:func:`tasks.sources.digest`):
    ``--train-data``'s file; a selfgen folder's rows and pairs together (every method on the folder is
    one configuration, as the offline table compares them, and an edit to either file is another);
    else the task's local copy under ``$HARNESS_DATA``; None where the rows are generated or packaged
    (no file a user could edit). A run's identity includes it: an edited file is another run."""
    if train_data:
        path = Path(train_data)
        if path.is_dir():
            try:
                files = [data_file(path, pairs) for pairs in (False, True)]
            except DataError:  # an unfinished selfgen folder: the resolve step names it
                return None
            held = " ".join(f"{file.name}:{digest(file)}" for file in files)
            return hashlib.sha256(held.encode()).hexdigest()[:16]
        return digest(path) if path.exists() else None
    try:
        return tasks.get(task).data_digest()
    except KeyError:  # an unknown task: the resolve step names it
        return None


def histogram_rows(
    task: str,
    train_data: str | None,
    train_limit: int | None,
    template: str = CHAT,
    offset: int = 0,
    style: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The rows whose target probabilities a record's histogram shows: :func:`training_rows`, or
    where ``--train-data`` holds only preference pairs, their chosen answers as rows."""
    if not (train_data and holds_pairs(train_data)):
        return training_rows(task, train_data, train_limit, template, offset, style=style)
    pairs, source = training_rows(task, train_data, train_limit, template, offset, pairs=True)
    rows = [{"prompt": pair["prompt"], "completion": pair["chosen"]} for pair in pairs]
    return Rows(rows, pairs.locations, pairs.base_dir), f"{source} (the chosen answers)"


def training_rows(
    task: str,
    train_data: str | None,
    train_limit: int | None,
    template: str = CHAT,
    offset: int = 0,
    pairs: bool = False,
    style: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The training rows of a run and where they came from: the file ``train_data`` (or a selfgen
    folder's file) when given, else the train split of ``task`` under the prompt ``template``, its
    solutions in ``style`` (one of the task's; None: its own); past the first ``offset`` of them,
    the next ``train_limit`` when given. ``pairs``: preference pairs, which only a file holds."""
    if pairs and not train_data:
        raise DataError(
            f"{' and '.join(PAIR_OBJECTIVES)} train on preference pairs (prompt, chosen, rejected): give "
            "--train-data a pairs file or a folder python -m harness.selfgen made"
        )
    if train_data:
        if style is not None:
            raise DataError(
                f"--train-style {style} rewrites a task's own solutions; the rows of {train_data} are "
                "written already"
            )
        if template != CHAT:
            raise DataError(
                f"--prompt-template {template} renders a task's questions; the rows of {train_data} "
                "are prompts already"
            )
        path = data_file(train_data, pairs)
        rows, source = read_rows(path, pairs), str(path)
    else:
        try:
            registered = tasks.get(task)
            split = registered.train_split
            prompts.check_applies(registered, template)
        except (KeyError, ValueError) as error:  # an unknown task, or one without a train split
            raise DataError(f"--task {task}: {error.args[0]}") from None
        examples = load_split(registered, split, None if train_limit is None else offset + train_limit)
        source = f"task {task} split {registered.train_split}"
        if style is not None:
            try:
                examples = [registered.restyle(e, style) for e in examples]
            except ValueError as error:
                raise DataError(f"--train-style {style}: {error}") from None
            source += f" ({style} style)"
        rows = [prompts.with_template(registered, e, template) for e in examples]
    if offset and offset >= len(rows):
        raise DataError(f"--train-offset {offset}: {source} has only {len(rows)} rows")
    if offset and train_limit is not None and offset + train_limit > len(rows):
        # Past an offset the rows are a pool kept apart (a warm-up's): fewer than asked is an error.
        raise DataError(
            f"--train-offset {offset} --train-limit {train_limit}: {source} has only "
            f"{len(rows) - offset} rows past the offset"
        )
    rows = rows[offset : None if train_limit is None else offset + train_limit]
    if not rows:
        raise DataError(f"{source}: the training split is empty")
    return rows, source
