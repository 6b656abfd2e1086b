"""An evaluation that survives a kill: each batch's completions are appended to
``<samples_dir>/<split>.progress.jsonl`` as the batch finishes, and a rerun of the same evaluation
generates only the batches it lacks.

The file's first line is the evaluation it belongs to (model and its weights, task, split, limit,
template, sampling, backend, device); each later line one example's completions. A line is written
whole with one ``write`` and synced, so a kill leaves at worst a truncated last line, which is dropped
(and its batch generated again), never scored. A rerun with another model or setting refuses to mix
its completions in, naming what changed, as training's resume does. When the split is scored, its
``<split>.jsonl`` is written and the progress file removed.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> progress = SamplesProgress(folder / "test.jsonl", {"model": "tiny"}, ["a", "b"])
>>> progress.done()
{}
>>> progress.append([1], [["x", "y"]])
>>> SamplesProgress(folder / "test.jsonl", {"model": "tiny"}, ["a", "b"]).done()
{1: ['x', 'y']}
>>> SamplesProgress(folder / "test.jsonl", {"model": "other"}, ["a", "b"]).done()
Traceback (most recent call last):
...
harness.errors.ConfigError: ...test.progress.jsonl holds another evaluation's completions: model 'tiny' (now 'other'); rerun with the same settings to resume it, or delete it to start over
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, DataError


class SamplesProgress:
    """The progress file beside ``samples_path`` of an evaluation ``identity`` (a JSON-able dict) over
    examples with ``ids``."""

    def __init__(self, samples_path: str | os.PathLike[str], identity: dict[str, Any], ids: list[Any]):
        samples_path = Path(samples_path)
        self.path = samples_path.with_name(samples_path.name.removesuffix(".jsonl") + ".progress.jsonl")
        self.identity = json.loads(json.dumps(identity))  # as it reads back: lists, not tuples
        self.ids = ids

    def done(self) -> dict[int, list[str]]:
        """The completions already made, by example index (empty when there is no progress file).
        A truncated last line is dropped, with a note on stderr; anything else wrong is one line."""
        if not self.path.exists():
            return {}
        content = self.path.read_bytes()
        lines = content.split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # a whole line ends in a newline
        if complete and tail:
            self._drop_tail(len(content) - len(tail), len(complete) + 1)
        elif not complete:  # not even the header made it: nothing was generated
            self.path.unlink()
            return {}
        header = self._parse(complete[0], 1)
        if header.get("evaluation") != self.identity:
            raise ConfigError(
                f"{self.path} holds another evaluation's completions: {changes(header.get('evaluation'), self.identity)}; "
                "rerun with the same settings to resume it, or delete it to start over"
            )
        found: dict[int, list[str]] = {}
        for number, line in enumerate(complete[1:], start=2):
            row = self._parse(line, number, last=number == len(complete))
            if row is None:  # a torn last line that happened to end in a newline
                self._drop_tail(sum(len(x) + 1 for x in complete[: number - 1]), number)
                break
            index = row.get("index")
            if (
                not isinstance(index, int)
                or not 0 <= index < len(self.ids)
                or row.get("id") != self.ids[index]
            ):
                raise DataError(
                    f"{self.path} line {number}: example {row.get('index')!r} ({row.get('id')!r}) is not one of "
                    "this evaluation's examples (the data changed?); delete the file to start over"
                )
            completions = row.get("completions")
            if not isinstance(completions, list) or not all(isinstance(c, str) for c in completions):
                raise DataError(f"{self.path} line {number}: completions must be a list of strings")
            found[index] = completions
        return found

    def append(self, indices: list[int], completions: list[list[str]]) -> None:
        """Add one finished batch: each example's line written whole and synced."""
        lines = []
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lines.append({"evaluation": self.identity})
        lines += [{"index": i, "id": self.ids[i], "completions": c} for i, c in zip(indices, completions)]
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write (a full disk) leaves a torn line, dropped later
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    def finish(self) -> None:
        """The split is scored and its samples file written: the progress is no longer needed."""
        self.path.unlink(missing_ok=True)

    def _parse(self, line: bytes, number: int, last: bool = False) -> dict[str, Any] | None:
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            return row
        if last:
            return None
        raise DataError(f"{self.path} line {number} is not a JSON object; delete the file to start over")

    def _drop_tail(self, keep_bytes: int, number: int) -> None:
        print(
            f"note: {self.path} line {number} was cut short (the run was killed while writing it); "
            "dropped, its batch is generated again",
            file=sys.stderr,
        )
        with open(self.path, "r+b") as file:
            file.truncate(keep_bytes)


def changes(old: Any, new: dict[str, Any], prefix: str = "") -> str:
    """What differs between two identities, ``sampling.temperature 1.0 (now 0.7)``."""
    if not isinstance(old, dict):
        return "its header is not an evaluation"
    differs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            if a != b:
                differs.append(changes(a, b, f"{prefix}{key}."))
        elif a != b:
            differs.append(f"{prefix}{key} {a!r} (now {b!r})")
    return ", ".join(differs)
