"""Run records: one JSON file per evaluated model (the untouched base, or an SFT- or DFT-trained one).

A record says what was run (task, backbone, method, every training hyperparameter, the data trained
on), what came out (one score per evaluation split) and where it ran (its provenance). The
leaderboards are rendered from these files alone (``harness.leaderboard``), so a record has to be
complete, and a half-written file must never replace a good one.

Where a record's file goes and which configuration and variant it is: :mod:`harness.identity`
(``<results>/<task>/<backbone-slug>/<variant>-<config_id>-seed<seed>.json``); where and with what
it ran: :mod:`harness.provenance`. A record is never replaced silently: the experiment and the
sweep reuse a finished one and replace one only when told to (``--redo``).

Scores are fractions in [0, 1] (the mean of ``Task.score``), never percentages.

>>> import tempfile
>>> record = make_record(task="math-words", domain="math", backbone="Qwen/Qwen2.5-0.5B-Instruct",
...     method="dft", hparams={"objective": "dft", "lr": 1e-5, "batch_size": 8, "epochs": 1, "seed": 0},
...     data={"train_examples": 2000, "dropped_overlong": 0},
...     scores={"test": {"role": "test", "value": 0.415, "stderr": 0.035, "n": 200,
...                      "samples_per_example": 1, "decoding": "greedy"}},
...     wall_time_s=812.0, run_dir=None)
>>> with tempfile.TemporaryDirectory() as folder:
...     path = write_record(record, folder)
...     print(path.relative_to(folder).as_posix())
...     load_records(folder) == [record]
math-words/Qwen--Qwen2.5-0.5B-Instruct/dft-06911126-seed0.json
True
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import files
from harness.config import LATER_DEFAULTS, LATER_EVALUATION_DEFAULTS, METHODS, OBJECTIVE_PARAMS
from harness.errors import RecordError
from harness.files import atomic_write_text, file_lock
from harness.identity import backbone_slug, record_path
from harness.objectives import BASE
from harness.provenance import provenance

SCHEMA = 1
ROLES = ("test", "ood")
RECORD_KEYS = (
    "schema",
    "task",
    "domain",
    "backbone",
    "method",
    "hparams",
    "data",
    "scores",
    "wall_time_s",
    "run_dir",
    "provenance",
)
# Optional: "evaluation" (how the scores were made: limit, sampling, OOD tasks, curve settings; a
# sweep matches finished cells by it), "curve" (training-time scores: [{step, split, role, value,
# stderr, n}], from --eval-every) and "token_probs" (histogram of the training targets' probabilities,
# harness.token_probs: {edges, counts, tokens, mean, rows, source}).
OPTIONAL_RECORD_KEYS = ("evaluation", "curve", "token_probs", "start")
SCORE_KEYS = ("role", "value", "stderr", "n", "samples_per_example")
# decoding: e.g. "greedy" or "temperature=0.6, top_p=0.95"; pass_at: {"1": 0.31, "10": 0.52}, unbiased
# pass@k of tasks graded pass/fail; verdicts: {"passed": 12, "failed": 180, ...} of execution-graded tasks.
# title: the benchmark's name as the paper's tables write it ("MATH500"), for its column.
# generation: every setting the completions were made with (harness.generate.generation_settings).
OPTIONAL_SCORE_KEYS = ("decoding", "pass_at", "verdicts", "title", "generation")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # task and domain names become file names


def make_record(
    *,
    task: str,
    domain: str,
    backbone: str,
    method: str,
    hparams: dict[str, Any],
    data: dict[str, Any],
    scores: dict[str, dict[str, Any]],
    wall_time_s: float,
    run_dir: str | None,
    device: str | None = None,
    **optional: Any,
) -> dict[str, Any]:
    """Build and validate the record of one run; :func:`provenance` is taken now, for ``device``
    (the run's ``--device``). ``optional`` takes the keys of ``OPTIONAL_RECORD_KEYS`` (a ``None``
    value is left out).

    >>> make_record(task="t", domain="math", backbone="m", method="grpo", hparams={}, data={},
    ...             scores={}, wall_time_s=0.0, run_dir=None)
    Traceback (most recent call last):
    ...
    harness.errors.RecordError: unknown method 'grpo'; valid methods: base, sft, dft, q-family, profit, chord-phi, gft, eaft, asft, psft, iw-sft, dpo
    """
    _check_method(method)
    record = {
        "schema": SCHEMA,
        "task": task,
        "domain": domain,
        "backbone": backbone,
        "method": method,
        "hparams": dict(hparams),
        "data": dict(data),
        "scores": _check_scores(scores),
        "wall_time_s": float(wall_time_s),
        "run_dir": None if run_dir is None else str(run_dir),
        "provenance": provenance(device),
    }
    unknown = sorted(set(optional) - set(OPTIONAL_RECORD_KEYS))
    if unknown:
        raise RecordError(f"unknown record keys {unknown}; optional keys: {', '.join(OPTIONAL_RECORD_KEYS)}")
    record |= {key: optional[key] for key in OPTIONAL_RECORD_KEYS if optional.get(key) is not None}
    _check_record(record)
    return with_later_defaults(record)


def offline(record: dict[str, Any]) -> bool:
    """Whether ``record`` trained on the backbone's own graded answers (the offline setting: its
    ``data.selfgen`` says whose answers they are)."""
    return isinstance((record.get("data") or {}).get("selfgen"), dict)


def score_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The splits whose score differs between two records of one run, as ``split 68.5 -> 75.0``
    (percentages); a split only one of them has is listed as added or gone.

    >>> a = {"scores": {"test": {"value": 0.685}, "ood": {"value": 0.04}}}
    >>> score_changes(a, {"scores": {"test": {"value": 0.75}, "ood": {"value": 0.04}}})
    ['test 68.5 -> 75.0']
    """
    changes = []
    old_scores, new_scores = old["scores"], new["scores"]
    for split in dict.fromkeys([*old_scores, *new_scores]):
        if split not in new_scores:
            changes.append(f"{split} gone (was {100 * old_scores[split]['value']:.1f})")
        elif split not in old_scores:
            changes.append(f"{split} added ({100 * new_scores[split]['value']:.1f})")
        elif old_scores[split]["value"] != new_scores[split]["value"]:
            before, after = (100 * s[split]["value"] for s in (old_scores, new_scores))
            changes.append(f"{split} {before:.1f} -> {after:.1f}")
    return changes


def spread_changes(
    reference: dict[str, Any], yours: dict[str, Any], seeds: list[dict[str, Any]]
) -> list[str]:
    """:func:`score_changes` from ``reference`` to ``yours``, each said against the reference's
    seed-to-seed spread: the range of that split's score over ``seeds`` (the reference's records of
    the same configuration, one per seed). A difference no larger than that range is one the
    reference's own seeds show; a larger one is not. A base record, or a configuration of one seed,
    has no spread to say.

    >>> ref = {"method": "sft", "scores": {"test": {"value": 0.69}, "ood": {"value": 0.10}}}
    >>> seeds = [ref, {"scores": {"test": {"value": 0.65}, "ood": {"value": 0.10}}},
    ...          {"scores": {"test": {"value": 0.70}, "ood": {"value": 0.11}}}]
    >>> for line in spread_changes(ref, {"scores": {"test": {"value": 0.71}, "ood": {"value": 0.14}}}, seeds):
    ...     print(line)
    test 69.0 -> 71.0 (+2.0: within the 5.0 between the reference's 3 seeds)
    ood 10.0 -> 14.0 (+4.0: beyond the 1.0 between the reference's 3 seeds)
    """
    lines = []
    for change in score_changes(reference, yours):
        split = change.split(" ", 1)[0]
        values = [100 * s["scores"][split]["value"] for s in seeds if split in s["scores"]]
        if split not in reference["scores"] or split not in yours["scores"]:
            lines.append(change)
            continue
        delta = 100 * (yours["scores"][split]["value"] - reference["scores"][split]["value"])
        if reference["method"] == BASE:
            note = "the base trains nothing: no seed spread"
        elif len(values) < 2:
            note = "one reference seed: no spread to compare with"
        else:
            width = max(values) - min(values)
            where = "within" if abs(delta) <= width + 1e-9 else "beyond"
            note = f"{where} the {width:.1f} between the reference's {len(values)} seeds"
        lines.append(f"{change} ({delta:+.1f}: {note})")
    return lines


def with_later_defaults(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the settings added after it was written (:data:`LATER_DEFAULTS`) at the
    values it was made with: in a trained record's ``hparams`` and in its ``evaluation``.

    >>> record = with_later_defaults({"method": "sft", "hparams": {"lr": 1e-3}, "evaluation": {}})
    >>> hparams = record["hparams"]
    >>> hparams["lr"], hparams["lora_rank"], hparams["q"], hparams["eaft_top_k"], record["evaluation"]
    (0.001, 0, 10.0, 20, {'prompt_template': 'chat'})
    """
    if record["method"] != BASE:
        record["hparams"] = {
            **record["hparams"],
            **{k: v for k, v in LATER_DEFAULTS.items() if k not in record["hparams"]},
        }
    if "evaluation" in record:
        record["evaluation"] = {
            **record["evaluation"],
            **{k: v for k, v in LATER_EVALUATION_DEFAULTS.items() if k not in record["evaluation"]},
        }
    return record


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The valid record at ``path`` (:func:`with_later_defaults`); a RecordError naming the file
    otherwise."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        _check_record(record)
    except ValueError as error:
        raise RecordError(f"{path}: malformed record: {' '.join(str(error).split())}") from error
    return with_later_defaults(record)


def write_record(record: dict[str, Any], results_dir: str | os.PathLike[str]) -> Path:
    """Write ``record`` atomically and return its path; an existing record survives a failed write.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_record({"method": "sft"}, folder)
    Traceback (most recent call last):
    ...
    harness.errors.RecordError: record is missing keys: schema, task, domain, backbone, hparams, data, scores, wall_time_s, run_dir, provenance
    """
    _check_record(record)
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"  # key order kept: it orders the columns
    return atomic_write_text(record_path(record, results_dir), text)


@contextlib.contextmanager
def record_lock(path: str | os.PathLike[str]) -> Iterator[bool]:
    """Hold the lock of the record at ``path`` while making it; yields False if another process
    holds it. Two sweeps sharing a results folder so never run the same configuration at once.
    The lock is a :func:`harness.files.file_lock` on ``<results>/<task>/<backbone>/.locks/``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "t" / "b" / "sft-0.json"
    ...     with record_lock(target) as first, record_lock(target) as second:
    ...         print(first, second)
    True False
    """
    with file_lock(_lock_path(path), wait=False) as held:
        yield held


def is_locked(path: str | os.PathLike[str]) -> bool:
    """Whether another process is making the record at ``path`` now (creates nothing)."""
    return files.is_locked(_lock_path(path))


def _lock_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.parent / ".locks" / f"{path.name}.lock"


def finished(path: str | os.PathLike[str], slot: dict[str, Any], evaluation: dict[str, Any]) -> bool:
    """Whether ``path`` holds a valid record of exactly this run: the same task, backbone, method and
    every hyperparameter (``slot``), evaluated the same way. Matched by content, not by file name."""
    return Path(path).exists() and not conflict(path, slot, evaluation)


def conflict(path: str | os.PathLike[str], slot: dict[str, Any], evaluation: dict[str, Any]) -> str | None:
    """Why the record at ``path`` is not one of exactly this run (it is malformed, or which settings
    differ, ``evaluation.limit 200 (now 50)``), or None when it is (or there is none). A run refuses
    to replace such a record unless told to (``--redo``).

    >>> import tempfile
    >>> slot = {"task": "t", "backbone": "b", "method": "base", "hparams": {}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_record(make_record(**slot, domain="math", data={}, scores={}, wall_time_s=1.0,
    ...                                     run_dir=None, evaluation={"limit": 200}), folder)
    ...     conflict(path, slot, {"limit": 200}), conflict(path, slot, {"limit": 50})
    (None, 'evaluation.limit 200 (now 50)')
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except RecordError as error:
        return str(error).removeprefix(f"{path}: ")
    normal = lambda value: json.loads(json.dumps(value))  # noqa: E731 - tuples vs lists, int vs float keys
    planned = with_later_defaults({**slot, "evaluation": evaluation})
    found = {key: record.get(key) for key in planned}
    differs = []
    for key, value in normal(planned).items():
        if isinstance(value, dict) and isinstance(found[key], dict):
            for name in dict.fromkeys([*normal(found[key]), *value]):
                before, now = normal(found[key]).get(name), value.get(name)
                if before != now:
                    differs.append(f"{key}.{name} {before} (now {now})")
        elif normal(found[key]) != value:
            differs.append(f"{key} {normal(found[key])} (now {value})")
    return ", ".join(differs) or None


def load_records(
    results_dir: str | os.PathLike[str], skipped: list[tuple[Path, str]] | None = None
) -> list[dict[str, Any]]:
    """Every ``*.json`` record under ``results_dir``, sorted by path. A malformed one (truncated, or a
    JSON file that is not a record) raises ValueError naming it; given a ``skipped`` list, it is
    appended there as ``(path, reason)`` instead and the others still load.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     load_records(folder)
    []
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {root}")
    records = []
    for path in sorted(root.rglob("*.json"), key=lambda p: p.relative_to(root).as_posix()):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            _check_record(record)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
            reason = " ".join(str(error).split())  # one line, whatever the parser said
            if skipped is None:
                raise RecordError(f"{path}: malformed record: {reason}") from error
            skipped.append((path, f"malformed record: {reason}"))
            continue
        records.append(with_later_defaults(record))
    return records


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise RecordError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")


def _check_scores(scores: Any) -> dict[str, dict[str, Any]]:
    """Validate ``{split: {...}}`` and return a copy with plain float/int values."""
    if not isinstance(scores, dict):
        raise RecordError(f"scores must be an object of splits, got {type(scores).__name__}")
    checked = {}
    for split, entry in scores.items():
        if not isinstance(entry, dict):
            raise RecordError(f"score of split {split!r} must be an object, got {type(entry).__name__}")
        missing = [key for key in SCORE_KEYS if key not in entry]
        unknown = sorted(set(entry) - set(SCORE_KEYS) - set(OPTIONAL_SCORE_KEYS))
        if missing or unknown:
            raise RecordError(
                f"score of split {split!r}: missing {missing}, unknown {unknown}; "
                f"expected {', '.join(SCORE_KEYS)} (and optionally {', '.join(OPTIONAL_SCORE_KEYS)})"
            )
        if entry["role"] not in ROLES:
            raise RecordError(f"split {split!r} has role {entry['role']!r}; valid roles: {', '.join(ROLES)}")
        value, stderr = _number(entry["value"], split, "value"), _number(entry["stderr"], split, "stderr")
        # Catches percentages passed as fractions: the leaderboard multiplies by 100.
        if not 0.0 <= value <= 1.0 or stderr < 0.0:
            raise RecordError(f"split {split!r}: value must be a fraction in [0, 1] and stderr >= 0")
        counts = {key: entry[key] for key in ("n", "samples_per_example")}
        for key, count in counts.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise RecordError(f"split {split!r}: {key} must be a positive integer, got {count!r}")
        checked[split] = {"role": entry["role"], "value": value, "stderr": stderr, **counts}
        for key in ("decoding", "title"):
            if key in entry:
                checked[split][key] = str(entry[key])
        if "generation" in entry:  # every setting the completions were made with
            generation = entry["generation"]
            if not isinstance(generation, dict) or not all(isinstance(k, str) for k in generation):
                raise RecordError(
                    f"split {split!r}: generation must be an object of settings, got {generation!r}"
                )
            checked[split]["generation"] = dict(generation)
        if "pass_at" in entry:
            pass_at = entry["pass_at"]
            if not isinstance(pass_at, dict) or not all(
                str(k).isdigit() and 0.0 <= _number(v, split, f"pass_at[{k}]") <= 1.0
                for k, v in pass_at.items()
            ):
                raise RecordError(
                    f"split {split!r}: pass_at must map k to a fraction in [0, 1], got {pass_at!r}"
                )
            checked[split]["pass_at"] = {str(k): float(v) for k, v in pass_at.items()}
        if "verdicts" in entry:
            verdicts = entry["verdicts"]
            if not isinstance(verdicts, dict) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in verdicts.values()
            ):
                raise RecordError(
                    f"split {split!r}: verdicts must map a verdict to a count, got {verdicts!r}"
                )
            checked[split]["verdicts"] = {str(k): c for k, c in verdicts.items()}
    return checked


def _number(value: Any, split: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"split {split!r}: {key} must be a finite number, got {value!r}")
    return float(value)


def _check_record(record: Any) -> None:
    if not isinstance(record, dict):
        raise RecordError(f"a record is a JSON object, got {type(record).__name__}")
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise RecordError(f"record is missing keys: {', '.join(missing)}")
    if record["schema"] != SCHEMA:
        raise RecordError(f"record schema is {record['schema']!r}; this harness reads schema {SCHEMA}")
    for key in ("task", "domain"):
        if not isinstance(record[key], str) or not _NAME.fullmatch(record[key]):
            raise RecordError(f"{key} {record[key]!r} must be a name of letters, digits, '.', '_', '-'")
    if not isinstance(record["backbone"], str) or not backbone_slug(record["backbone"]):
        raise RecordError(f"backbone must be a model id or path, got {record['backbone']!r}")
    method, hparams = record["method"], record["hparams"]
    _check_method(method)
    if not isinstance(hparams, dict) or not isinstance(record["data"], dict):
        raise RecordError("hparams and data must be objects")
    # Base records belong to every configuration of their task and backbone: they cannot have one.
    if method == BASE and hparams:
        raise RecordError(f"a base record has no training hyperparameters, got {sorted(hparams)}")
    if method != BASE and not hparams:
        raise RecordError(f"a {method} record needs its training hyperparameters")
    if hparams.get("objective", method) != method:
        raise RecordError(f"method {method!r} but hparams say objective {hparams['objective']!r}")
    for key in OBJECTIVE_PARAMS:
        value = hparams.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"hparams {key} must be a number, got {value!r}")
    _check_scores(record["scores"])
    wall = record["wall_time_s"]
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not wall >= 0:
        raise RecordError(f"wall_time_s must be a number of seconds, got {wall!r}")
    if not isinstance(record["provenance"], dict):
        raise RecordError("provenance must be an object")
    _check_optional(record)


def _check_optional(record: dict[str, Any]) -> None:
    if not isinstance(record.get("evaluation", {}), dict):
        raise RecordError("evaluation must be an object")
    start = record.get("start", {})
    if not isinstance(start, dict) or (start and not isinstance(start.get("target"), (int, float))):
        raise RecordError("start must be an object with a numeric target (a continuum start's)")
    curve = record.get("curve", [])
    if not isinstance(curve, list):
        raise RecordError("curve must be a list of points")
    for point in curve:
        if not isinstance(point, dict) or not {"step", "split", "value", "stderr"} <= set(point):
            raise RecordError(f"curve point {point!r} needs step, split, value and stderr")
        step = point["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise RecordError(f"curve point step must be a count of steps, got {step!r}")
        if not 0.0 <= _number(point["value"], point["split"], "curve value") <= 1.0:
            raise RecordError(f"curve value of split {point['split']!r} must be a fraction in [0, 1]")
    if "token_probs" in record:
        probs = record["token_probs"]
        edges, counts = (probs.get("edges"), probs.get("counts")) if isinstance(probs, dict) else (None, None)
        if (
            not isinstance(edges, list)
            or not isinstance(counts, list)
            or len(edges) != len(counts) + 1
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
        ):
            raise RecordError(
                "token_probs needs edges (one more than counts) and non-negative integer counts"
            )
