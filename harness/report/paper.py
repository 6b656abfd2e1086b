"""The paper beside yours: a page's table of one configuration, matched to the recipe (a row of the
DFT paper's tables, :mod:`harness.recipes`) of the same backbone and task, shows the paper's numbers
next to the measured ones with the difference, and says whether the runs used the paper row's
configuration (hyperparameters and evaluation protocol) or which settings differ.

>>> row = recipes.RECIPES["math-qwen2.5-math-1.5b"]
>>> expected_hparams(row)["lr"], expected_hparams(row)["batch_size"]
(5e-05, 256)
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from harness import objectives, recipes
from harness.config import (
    BATCH_SPLIT_KEYS,
    HPARAM_KEYS,
    LATER_DEFAULTS,
    LATER_EVALUATION_DEFAULTS,
    OBJECTIVE_KEYS,
    PRESETS,
    REPLICATE_KEYS,
    TrainConfig,
)
from harness.objectives import BASE
from harness.results import offline
from harness.stats import Estimate

Record = dict[str, Any]
Rows = dict[str, list[Record]]
# What makes a configuration the paper's: every hyperparameter the config id reads, less the backbone
# (matched on its own) and how a batch is split over ranks and micro-batches (the same update).
COMPARED = [
    k for k in HPARAM_KEYS if k not in OBJECTIVE_KEYS | REPLICATE_KEYS | set(BATCH_SPLIT_KEYS) | {"model"}
]


def expected_hparams(row: recipes.Recipe) -> dict[str, Any]:
    """The hyperparameters a run of ``row`` trains with: TrainConfig's defaults, the row's preset,
    the row's own values (LoRA's alpha defaulting to twice the rank, as the resolver does)."""
    values = {f.name: f.default for f in fields(TrainConfig)}
    values |= PRESETS[row.values.get("preset", "paper-math")]
    values |= {k: v for k, v in row.values.items() if k in values}
    if values["lora_rank"] and values["lora_alpha"] is None:
        values["lora_alpha"] = 2.0 * values["lora_rank"]
    return values


def expected_evaluation(row: recipes.Recipe) -> dict[str, Any]:
    """How a run of ``row`` is scored: every example (or the row's ``eval_limit``) under the row's
    prompt template."""
    template = row.values.get("eval_template") or row.values.get("prompt_template", "chat")
    return {"limit": row.values.get("eval_limit"), "prompt_template": template}


def differences(row: recipes.Recipe, record: Record) -> list[str]:
    """The settings of a trained ``record`` that are not ``row``'s, ``lr 0.001 (the paper's 5e-05)``:
    hyperparameters, the evaluation's limit and template, and the decoding each split was generated
    with (its score's ``generation``) against the paper's (:attr:`harness.recipes.Recipe.paper_decoding`)."""
    expected, hparams = expected_hparams(row), record["hparams"]
    found = []
    for key in COMPARED:
        value = hparams.get(key, LATER_DEFAULTS.get(key))
        if value != expected.get(key):
            found.append(f"{key} {_text(value)} (the paper's {_text(expected.get(key))})")
    evaluation = LATER_EVALUATION_DEFAULTS | (record.get("evaluation") or {})
    for key, wanted in expected_evaluation(row).items():
        if evaluation.get(key) != wanted:
            found.append(f"evaluation {key} {_text(evaluation.get(key))} (the paper's {_text(wanted)})")
    found += _data_differences(row, record)
    decoding: dict[str, str] = {}
    for score in record["scores"].values():
        generation = score.get("generation")
        if generation is None:  # older records, lm-eval's: not known
            decoding.setdefault("", "decoding not recorded")
            continue
        for key, wanted in row.paper_decoding.items():
            if generation.get(key) != wanted:
                decoding.setdefault(key, f"{key} {_text(generation.get(key))} (the paper's {_text(wanted)})")
    return found + list(decoding.values())


def _data_differences(row: recipes.Recipe, record: Record) -> list[str]:
    """An offline row's data: the recipe's backbone answering the recipe's questions, sampled as the
    recipe says (the folder's path alone proves nothing)."""
    if not row.selfgen:
        return []
    made = (record.get("data") or {}).get("selfgen")
    if not isinstance(made, dict):
        return ["training data not self-generated (the paper's row trains on the backbone's own answers)"]
    wanted = {
        "model": row.model,
        "task": row.selfgen.get("task"),
        "limit": row.selfgen.get("train_limit"),
        "template": row.selfgen.get("eval_template", "chat"),
        "num_samples": row.selfgen.get("num_samples"),
        "temperature": row.selfgen.get("temperature"),
    }
    return [
        f"self-generated data's {key} {_text(made.get(key))} (the paper's {_text(value)})"
        for key, value in wanted.items()
        if made.get(key) != value
    ]


def _text(value: Any) -> str:
    if value is None:
        return "unset"
    return (
        json.dumps(value)
        if isinstance(value, (dict, list, str))
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def matching_row(task: str, backbone: str, rows: Rows) -> tuple[recipes.Recipe, list[str]] | None:
    """The recipe of ``backbone`` (the recipe's model, as a record names it or as ``--model`` gave it)
    and ``task`` that reports numbers for the table's trained methods,
    with the fewest settings that differ from the table's runs; None when no recipe is of them."""
    trained = [reps[0] for key, reps in rows.items() if reps[0]["method"] != BASE]
    if not trained:
        return None
    methods = {record["method"] for record in trained}
    offline = isinstance((trained[0].get("data") or {}).get("selfgen"), dict)
    candidates = [
        row
        for row in recipes.RECIPES.values()
        if row.model in (backbone, trained[0]["hparams"].get("model"))
        and row.values.get("task") == task
        and methods & set(row.reported)
        and bool(row.selfgen) == offline  # an offline run is never set beside an online row, nor the reverse
    ]
    if not candidates:
        return None
    scored = [(len(differences(row, trained[0])), index, row) for index, row in enumerate(candidates)]
    _, _, best = min(scored)
    return best, differences(best, trained[0])


def paper_lines(
    task: str, backbone: str, rows: Rows, measured: dict[str, dict[str, Estimate | None]]
) -> list[str]:
    """The block under a table: the matched row's numbers, the measured ones and their difference per
    column (``measured[method][column]``, by the paper's column names, "Avg." their mean), and whether
    the configuration is the paper's. Empty when no recipe matches."""
    found = matching_row(task, backbone, rows)
    if found is None:
        return []
    row, differ = found
    # A benchmark of the paper's table that these runs did not score: named, and no average of the
    # rest is set beside the paper's average of all.
    missing = [c for c in row.columns if c != "Avg." and all(m.get(c) is None for m in measured.values())]
    if missing:
        differ = [*differ, f"benchmarks: not scored on {', '.join(missing)}"]
        measured = {method: {**columns, "Avg.": None} for method, columns in measured.items()}
    how = (
        "the same configuration as the paper's row"
        if not differ
        else "a configuration that differs from the paper's row in " + ", ".join(differ)
    )
    lines = [
        "",
        f"**The paper beside these runs**: recipe `{row.name}` ({row.table} of {recipes.SOURCE}); {how}.",
        "",
        "| model | " + " | ".join(row.columns) + " |",
        "|---|" + "---:|" * len(row.columns),
    ]
    for key, reps in rows.items():
        method = reps[0]["method"]
        if key != method or method not in row.reported or method not in measured:
            continue  # a variant (dft-floor0.1) is not the paper's row
        label = objectives.label(method, offline(reps[0]))
        paper = row.reported[method]
        ours = [measured[method].get(column) for column in row.columns]
        decimals = row.decimals  # as the paper prints its table
        lines.append(f"| {label}, paper | " + " | ".join(f"{v:.{decimals}f}" for v in paper) + " |")
        lines.append(
            f"| {label}, measured | "
            + " | ".join("–" if m is None else f"{100 * m.value:.{decimals}f}" for m in ours)
            + " |"
        )
        lines.append(
            f"| {label}, measured − paper | "
            + " | ".join(
                "–" if m is None else f"{100 * m.value - v:+.{decimals}f}" for m, v in zip(ours, paper)
            )
            + " |"
        )
    for name, numbers in row.context.items():
        lines.append(f"| {name}, paper | " + " | ".join(f"{v:.{row.decimals}f}" for v in numbers) + " |")
    return lines
