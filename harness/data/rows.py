"""Training and evaluation rows: reading them from files and checking their shape.

A row is ``{"prompt": [messages], "completion": [messages]}`` (the conversational prompt/completion
format of TRL and the Hub); a message's content is a string or a list of parts, images as
``{"type": "image", "image": ...}``. A row of two strings (TRL's standard prompt/completion format)
is plain text, continued without a chat template: what a raw prompt template
(:mod:`tasks.prompts`) makes. Every problem is a :class:`harness.errors.DataError` naming the
file and the line or row.

>>> check_row({"prompt": [{"role": "user", "content": "hi"}], "completion": []}, "rows.jsonl line 3")
Traceback (most recent call last):
...
harness.errors.DataError: rows.jsonl line 3: 'completion' is empty
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tasks
from harness.errors import DataError
from tasks import prompts
from tasks.prompts import CHAT


def check_row(row: Any, where: str) -> None:
    """Raise ``DataError`` unless ``row`` is a valid conversational prompt/completion row."""
    if not isinstance(row, dict):
        raise DataError(
            f"{where}: expected an object with 'prompt' and 'completion', got {type(row).__name__}"
        )
    if all(isinstance(row.get(field), str) for field in ("prompt", "completion")):
        # Plain text (a raw prompt template's rows): the prompt is continued as it is.
        if not row["completion"].strip():
            raise DataError(f"{where}: 'completion' has no text, so there is nothing to train")
        return
    for field in ("prompt", "completion"):
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
    if not any(_text(m["content"]).strip() for m in row["completion"]):
        raise DataError(f"{where}: 'completion' has no text, so there is nothing to train")


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


def read_rows(path: str | Path) -> Rows:
    """Read and validate rows from a ``.jsonl`` or ``.json`` file, or a ``.parquet`` / ``.arrow``
    file (read with ``datasets``). Errors name the file and the line or row. CSV is not accepted:
    it cannot hold lists of messages."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
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
    for row, where in zip(rows, locations):
        check_row(row, where)
    if not rows:
        raise DataError(f"{path}: no rows")
    return Rows(rows, locations, path.resolve().parent)


def load_split(task, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The examples of a task's split. A task says what is wrong with its data in a ``ValueError``
    (or a missing file in a ``FileNotFoundError``): it becomes a :class:`DataError` here."""
    try:
        return task.load(split, limit=limit)
    except (ValueError, FileNotFoundError) as error:
        raise DataError(f"task {task.name} split {split}: {error}") from None


def training_rows(
    task: str, train_data: str | None, train_limit: int | None, template: str = CHAT, offset: int = 0
) -> tuple[list[dict[str, Any]], str]:
    """The training rows of a run and where they came from: the file ``train_data`` when given, else
    the train split of ``task`` under the prompt ``template``; past the first ``offset`` of them,
    the next ``train_limit`` when given."""
    if train_data:
        if template != CHAT:
            raise DataError(
                f"--prompt-template {template} renders a task's questions; the rows of {train_data} "
                "are prompts already"
            )
        rows, source = read_rows(train_data), train_data
    else:
        try:
            registered = tasks.get(task)
            split = registered.train_split
            prompts.check_applies(registered, template)
        except (KeyError, ValueError) as error:  # an unknown task, or one without a train split
            raise DataError(f"--task {task}: {error.args[0]}") from None
        examples = load_split(registered, split, None if train_limit is None else offset + train_limit)
        rows, source = (
            [prompts.with_template(registered, e, template) for e in examples],
            f"task {task} split {registered.train_split}",
        )
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
