"""Self-generated training data, the paper's offline-RL setting (arXiv 2508.05629, section 4.2): a
backbone answers each of a task's training questions ``n`` times (four at temperature 1.0 by
default), the task's own grader grades every answer, and the folder ``--output-dir`` gets

- ``rows.jsonl``: every answer graded correct, as a conversational prompt/completion row (the
  paper's RFT data; train on it with ``--train-data DIR/rows.jsonl``: ``--methods base sft dft`` is
  then RFT vs DFT);
- ``pairs.jsonl``: for each question with a correct and a wrong answer, one preference row
  ``{"prompt", "chosen", "rejected"}`` (TRL's conversational preference format): its first correct
  answer and its first wrong one;
- ``samples.jsonl``: every answer with its grade, as an evaluation's samples file;
- ``selfgen.json``: the model, task, split, sampling and seed, the counts, and the provenance,
  written last: a folder without it is not finished.

Generation goes through either backend (``--generation-backend hf|vllm``) with the evaluation's
sampling protocol and per-sample seeds (:mod:`harness.generate`), and survives a kill as evaluation
does (:mod:`harness.progress`): a rerun generates only the batches the killed one lacked and writes
the same files. A finished folder is never replaced: the same command again says so and leaves it,
and other settings are refused in one line naming what differs.

``python -m harness.selfgen --model tiny --task math-words --train-limit 64 --output-dir runs/selfgen``
(the command: :mod:`harness.selfgen`).

>>> import tempfile
>>> short = Evaluation(limit=4, sampling=Sampling(max_new_tokens=48))
>>> made = selfgen("tiny", "math-words", tempfile.mkdtemp(), short)
>>> made["counts"]["questions"], made["counts"]["samples"], made["generation"]["temperature"]
(4, 16, 1.0)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image

import tasks
from harness.config import (
    SELFGEN_PROTOCOL,
    Evaluation,
    Sampling,
    makeable_folder,
)
from harness.data.images import has_images, printable
from harness.data.rows import SELFGEN_FILES, load_split
from harness.errors import ConfigError, DataError
from harness.evaluation import generate_kept, generator, model_key
from harness.files import atomic_write_bytes, atomic_write_jsonl, atomic_write_text
from harness.generate import generation_settings
from harness.progress import changes
from harness.provenance import provenance
from harness.score import grade_samples
from tasks.prompts import with_template

META, SAMPLES = "selfgen.json", "samples.jsonl"
ROWS, PAIRS = SELFGEN_FILES[False], SELFGEN_FILES[True]  # where training reads them


def selfgen(
    model: str, task_name: str, output_dir: str | Path, evaluation: Evaluation | None = None
) -> dict[str, Any]:
    """Make (or find finished) the self-generated data of ``model`` on ``task_name``'s training
    questions in ``output_dir``, generated as ``evaluation`` says (the first ``limit`` questions,
    asked with its prompt template, on its device and backend); returns the contents of its
    ``selfgen.json``. The sampling's unset fields take :data:`SELFGEN_PROTOCOL`, then the task's
    generation budget."""
    evaluation = evaluation or Evaluation()
    task = tasks.get(task_name)
    if not task.graded:
        raise DataError(f"task {task.name} has no grader (training data only): nothing can be kept")
    split = task.train_split
    limit, template = evaluation.limit, evaluation.template
    sampling = (evaluation.sampling or Sampling()).resolved(SELFGEN_PROTOCOL, budget=task.max_new_tokens)
    generation = evaluation.generation()
    folder = Path(output_dir)
    data = {
        "task": task.name,
        "split": split,
        "limit": limit,
        "template": template,
        "sampling": asdict(sampling),
    }
    # What defines the data, known before any model loads: a finished folder is found (or refused)
    # without loading one; where it was computed (device, dtype) does not make it other data.
    pixels = [generation["min_pixels"], generation["max_pixels"]]
    defining = model_key(model) | {"backend": generation["generation_backend"], "pixels": pixels} | data
    finished = _finished(folder, json.loads(json.dumps(defining)))
    if finished is not None:
        return finished
    problem = makeable_folder(folder)  # before any model loads: one line, not a lost generation
    if problem is None:
        try:  # what the check cannot see (a file system that refuses, /proc)
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            problem = f"cannot be made: {folder} ({error.strerror})"
    if problem:
        raise DataError(f"--output-dir {problem}")
    examples = load_split(task, split, limit)
    if not examples:
        raise DataError(f"task {task.name} split {split} is empty; there is nothing to answer")
    with generator(model, evaluation) as loaded:
        identity = json.loads(json.dumps(loaded.identity | data))
        conversations = [with_template(task, e, template)["prompt"] for e in examples]
        if loaded.processor is None and any(
            has_images({"prompt": c}) for c in conversations if not isinstance(c, str)
        ):
            raise DataError(f"task {task.name} has images; the backbone is text-only (no vision tower)")
        loaded.tokenizer.padding_side = "left"
        completions, progress = generate_kept(
            loaded.model,
            loaded.tokenizer,
            conversations,
            [e["id"] for e in examples],
            sampling,
            loaded.processor,
            folder / SAMPLES,
            {k: v for k, v in identity.items() if k != "sampling"},
        )
    stored = [_stored(c, folder, e["id"]) for c, e in zip(conversations, examples)]
    samples, summary = grade_samples(task, split, examples, [printable(c) for c in stored], completions)
    correct = [s for s in samples if s["score"] == 1.0 and s["completion"].strip()]
    if not correct:
        atomic_write_jsonl(folder / SAMPLES, samples)  # to read why; no rows, pairs or selfgen.json
        raise DataError(
            f"{folder}: none of the {len(samples)} samples of {len(examples)} questions was graded "
            f"correct, so there is nothing to train on (see {folder / SAMPLES})"
        )
    prompt_of = {e["id"]: prompt for e, prompt in zip(examples, stored)}
    rows = [_row(prompt_of[s["id"]], s) for s in correct]
    pairs = _pairs(examples, stored, samples)
    meta = {
        "selfgen": identity,
        "generation": generation_settings(sampling),
        "counts": {
            "questions": len(examples),
            "samples": len(samples),
            "correct": len(correct),
            "questions_solved": len({s["id"] for s in correct}),
            "pairs": len(pairs),
        },
        "accuracy": {"value": summary["value"], "stderr": summary["stderr"]},
        "files": {"rows": ROWS, "pairs": PAIRS, "samples": SAMPLES},
        "provenance": provenance(identity.get("device")),
    }
    atomic_write_jsonl(folder / SAMPLES, samples)
    atomic_write_jsonl(folder / ROWS, rows)
    atomic_write_jsonl(folder / PAIRS, pairs)
    atomic_write_text(folder / META, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    progress.finish()
    return meta


def origin(train_data: str | None) -> dict[str, Any] | None:
    """What a record says of training data that a finished selfgen folder holds: the model that
    answered, the questions, the sampling and the counts; None for other data.

    >>> origin(None), origin("rows.jsonl")
    (None, None)
    """
    if not train_data or not Path(train_data).is_dir():
        return None
    meta = read_meta(train_data)
    made, sampling = meta["selfgen"], meta["selfgen"]["sampling"]
    return {
        "model": made.get("model"),
        "task": made.get("task"),
        "split": made.get("split"),
        "limit": made.get("limit"),
        "template": made.get("template"),
        "num_samples": sampling.get("num_samples"),
        "temperature": sampling.get("temperature"),
        "sample_seed": sampling.get("sample_seed"),
        **meta["counts"],
    }


# Where the data was computed, not what it is: a finished folder made on a GPU is this selfgen's on a
# CPU too (a killed run's progress, by contrast, resumes only where it was made: harness.progress).
WHERE_COMPUTED = ("device", "dtype", "tensor_parallel_size")


def read_meta(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A finished selfgen folder's ``selfgen.json``, checked: a missing or malformed one (a folder a
    killed run left, or one made by hand) is one line naming it."""
    path = Path(folder) / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        made, counts = meta["selfgen"], meta["counts"]
        shape_ok = isinstance(made, dict) and isinstance(made["sampling"], dict) and isinstance(counts, dict)
    except FileNotFoundError:
        raise DataError(
            f"{path}: missing; a selfgen folder is finished when its selfgen.json is written"
        ) from None
    except (ValueError, KeyError, TypeError):
        shape_ok = False
    if not shape_ok:
        raise DataError(f"{path} is not a selfgen.json (python -m harness.selfgen writes it)")
    for name in (ROWS, PAIRS, SAMPLES):
        if not (Path(folder) / name).is_file():
            raise DataError(
                f"{Path(folder) / name}: missing from a finished selfgen folder; delete the folder to make it again"
            )
    return meta


def _finished(folder: Path, defining: dict[str, Any]) -> dict[str, Any] | None:
    """The finished data in ``folder`` if it is this selfgen's; another's is one line, never replaced."""
    if not (folder / META).exists():
        return None
    meta = read_meta(folder)
    made = {k: v for k, v in meta["selfgen"].items() if k not in WHERE_COMPUTED}
    if made != defining:
        raise ConfigError(
            f"{folder} holds another selfgen's data: {changes(made, defining)}; choose another "
            "--output-dir (a finished folder is never replaced)"
        )
    print(f"note: {folder} is this selfgen, finished already; nothing was generated", file=sys.stderr)
    return meta


def _stored(conversation: Any, folder: Path, example_id: Any) -> Any:
    """``conversation`` as a data file holds it: an in-memory image saved under ``images/`` and
    named by its path relative to the folder (as :func:`harness.data.rows.read_rows` reads it)."""
    if isinstance(conversation, str):
        return conversation
    out = []
    for m, message in enumerate(conversation):
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for p, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("image"), Image.Image):
                    name = f"images/{_slug(example_id)}-{m}-{p}.png"
                    if not (folder / name).exists():
                        (folder / "images").mkdir(parents=True, exist_ok=True)
                        atomic_write_bytes(folder / name, _png(part["image"]))
                    part = {**part, "image": name}
                parts.append(part)
            content = parts
        out.append({**message, "content": content})
    return out


def _slug(value: Any) -> str:
    """A file name for an example id: readable, and unique (ids that differ only in punctuation too)."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(value))[:60]
    return f"{readable}-{hashlib.sha256(str(value).encode()).hexdigest()[:8]}"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _answer(prompt: Any, text: str) -> Any:
    """The completion side of a row: an assistant message, or the text itself after a raw prompt."""
    return text if isinstance(prompt, str) else [{"role": "assistant", "content": text}]


def _row(prompt: Any, sample: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "completion": _answer(prompt, sample["completion"]),
        "id": sample["id"],
        "sample": sample["sample"],
    }


def _pairs(
    examples: list[dict[str, Any]], prompts: list[Any], samples: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One preference row per question answered both right and wrong: its first of each."""
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for sample in samples:
        by_id.setdefault(sample["id"], []).append(sample)
    pairs = []
    for example, prompt in zip(examples, prompts):
        # An answer with no text (the model stopped at once) is no preference row's side.
        answers = [s for s in by_id[example["id"]] if s["completion"].strip()]
        right = next((s for s in answers if s["score"] == 1.0), None)
        wrong = next((s for s in answers if s["score"] == 0.0), None)
        if right is not None and wrong is not None:
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": _answer(prompt, right["completion"]),
                    "rejected": _answer(prompt, wrong["completion"]),
                    "id": example["id"],
                    "samples": [right["sample"], wrong["sample"]],
                }
            )
    return pairs
