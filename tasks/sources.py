"""Where a real benchmark's rows come from: a local copy, or the Hugging Face Hub.

Problems are ``ValueError``s naming the file and row, as every task reports them (the harness turns
them into one-line errors that also name the task and split).

One way points every benchmark task at local copies: the ``HARNESS_DATA`` environment variable
names a folder, and the task ``math-500`` looks in it for ``math-500.jsonl`` (or ``.jsonl.gz``), ``math-500.json``,
``math-500.parquet`` or a folder ``math-500/`` (a ``huggingface-cli download --repo-type dataset
<id> --local-dir $HARNESS_DATA/math-500`` snapshot, a ``save_to_disk`` folder, or a folder of data
files; a folder with one data file at its top is read as that file, so pictures may sit beside
it), before it tries the hub (``datasets.load_dataset``, which also reads the hub cache, so an
``HF_HUB_OFFLINE=1`` machine with a warm cache works). A task that finds neither says in one line
where it looked and how to make a local copy.

>>> import os, tempfile, json
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "aime24.jsonl"), "w") as f:
...     _ = f.write(json.dumps({"problem": "1 + 1?", "answer": "2"}) + "\\n")
>>> rows, where = load_rows("aime24", Source("HuggingFaceH4/aime_2024", split="train"), {"HARNESS_DATA": folder})
>>> rows, where.endswith("aime24.jsonl")
([{'problem': '1 + 1?', 'answer': '2'}], True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_ENV = "HARNESS_DATA"
FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


@dataclass(frozen=True)
class Source:
    """A benchmark on the hub: its dataset id, configuration (subset) and split."""

    hub_id: str
    config: str | None = None
    split: str = "test"

    def __str__(self) -> str:
        return self.hub_id + (f" ({self.config})" if self.config else "") + f", split {self.split}"


def read_file(path: Path):
    """The rows of a ``.jsonl`` (optionally gzipped), ``.json`` or ``.parquet`` file; a ValueError
    names the file and line of a bad one."""
    if path.suffix == ".parquet":
        import datasets

        return datasets.Dataset.from_parquet(str(path))
    if path.name.endswith(".gz"):
        import gzip

        text = gzip.decompress(path.read_bytes()).decode("utf-8-sig")
    else:
        text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        rows = json.loads(text)
        if isinstance(rows, dict) and isinstance(rows.get("data"), list):
            rows = rows["data"]  # {"data": [...]}, as some exports write it
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of rows")
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} line {number}: not valid JSON ({error.msg})") from None
    return rows


def _read_folder(path: Path, source: Source):
    import datasets

    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        loaded = datasets.load_from_disk(str(path))
        return loaded[source.split] if isinstance(loaded, datasets.DatasetDict) else loaded
    files = [f for f in sorted(path.iterdir()) if f.is_file() and f.name.endswith(FILE_SUFFIXES)]
    if len(files) == 1:  # one data file beside other things (a training set's pictures): that file
        return read_file(files[0])
    return datasets.load_dataset(str(path), source.config, split=source.split)


def local_copy(task_name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The local copy of ``task_name`` under ``$HARNESS_DATA``, or None."""
    folder = (os.environ if environ is None else environ).get(DATA_ENV)
    if not folder:
        return None
    for candidate in [Path(folder) / f"{task_name}{suffix}" for suffix in FILE_SUFFIXES] + [
        Path(folder) / task_name
    ]:
        if candidate.exists():
            return candidate
    return None


def digest(path: str | Path) -> str:
    """What a data file or folder holds, as a short hash (16 hex digits of SHA-256): a file's bytes,
    or every file under a folder with its relative path, in order. A run's identity includes it, so
    an edited file is another run (cached by size and modification time: a 15 GB folder is read once
    per process).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write('{"q": 1}\\n')
    >>> len(digest(f.name)), digest(f.name) == digest(f.name)
    (16, True)
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _digest(str(path.resolve()), stats)


@lru_cache(maxsize=64)
def _digest(root: str, stats: tuple) -> str:
    import hashlib

    total = hashlib.sha256()
    base = Path(root)
    for name, _, _ in stats:
        path = Path(name)
        if path.resolve() != base:  # a folder's file: its path inside the folder counts too
            total.update(str(path.resolve().relative_to(base)).encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                total.update(block)
    return total.hexdigest()[:16]


def _from_hub(source: Source):
    """The hub dataset (a ``datasets.Dataset``: memory-mapped, rows are read when selected)."""
    import datasets

    return datasets.load_dataset(source.hub_id, source.config, split=source.split)


# Which rows of a source a task keeps: given how many there are, their indices in order.
Select = Callable[[int], list[int]]


def _selected(rows, select: Select | None) -> list[dict[str, Any]]:
    if select is None:
        return list(rows)
    indices = select(len(rows))
    if hasattr(rows, "select"):  # a datasets.Dataset: only the chosen rows are decoded
        return list(rows.select(indices))
    return [rows[i] for i in indices]


def load_rows(
    task_name: str,
    source: Source,
    environ: Mapping[str, str] | None = None,
    select: Select | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """``(rows, where they came from)`` for ``task_name``: its local copy, else the hub; only the rows
    ``select`` picks when given (a training set's first 100,000 rows, or a seeded sample). No rows
    at all is a ValueError naming where."""
    path = local_copy(task_name, environ)
    if path is not None:
        try:
            rows = _read_folder(path, source) if path.is_dir() else read_file(path)
        except (OSError, KeyError, ValueError) as error:
            if str(error).startswith(str(path)):  # ours: it names the file and line already
                raise
            raise ValueError(
                f"{path}: cannot read {task_name} rows ({type(error).__name__}: {error})"
            ) from None
        return nonempty(_selected(rows, select), str(path), task_name), str(path)
    try:
        hub = _from_hub(source)
    except Exception as error:  # noqa: BLE001 - offline, missing, gated: all end in the same advice
        folder = (os.environ if environ is None else environ).get(DATA_ENV)
        looked = (
            f"no {task_name}.jsonl/.jsonl.gz/.json/.parquet or {task_name}/ in ${DATA_ENV}={folder}"
            if folder
            else f"${DATA_ENV} is not set"
        )
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(
            f"{looked}, and the hub dataset {source} could not be loaded ({reason}); "
            f"where there is network: huggingface-cli download --repo-type dataset {source.hub_id} "
            f"--local-dir $HARNESS_DATA/{task_name}"
        ) from None
    return nonempty(_selected(hub, select), f"hub {source}", task_name), f"hub {source}"


def nonempty(rows: list[dict[str, Any]], where: str, task_name: str) -> list[dict[str, Any]]:
    """``rows``, or a ValueError naming ``where`` when there are none."""
    if not rows:
        raise ValueError(f"{where}: no rows for task {task_name}")
    return rows


def field(row: dict[str, Any], names: tuple[str, ...], task_name: str, where: str, number: int) -> Any:
    """The first of ``names`` that ``row`` has; a ValueError naming the missing fields and the file."""
    if not isinstance(row, dict):
        raise ValueError(f"{where} row {number}: expected an object, got {type(row).__name__}")
    for name in names:
        if name in row and row[name] not in (None, "", []):
            return row[name]
    present = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
    wanted = " or ".join(repr(name) for name in names)
    raise ValueError(f"{where} row {number}: {task_name} needs the field {wanted}; the row has {present}")
