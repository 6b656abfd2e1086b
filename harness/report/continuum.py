"""Continuum pages: where each objective beats SFT, against the starting point's strength and
against demonstration noise (the model-capability continuum of arXiv 2510.00526).

Runs of one task whose hyperparameters differ only in the starting model (``--model``: a backbone,
or one rung of a warm-up ladder made by :mod:`harness.continuum`) and in ``--train-noise`` form one
map; the batch split may differ too. A map with at least two points gets
``continuum-<task>-<map id>.md``. A starting point's strength is the mean probability it gives the
training targets' tokens, read from its base record's token-probability histogram (``--prob-rows``);
the points are ordered by it. For each point and objective the page gives the objective minus SFT,
in-domain (mean of the test splits) and out of domain (mean of the OOD splits), in percentage
points, over the seeds with a standard error; `*` marks a significant difference where the seed
variance was measured. Then plots with one line per objective against strength and against
noise, and a summary of what the map shows, computed from the same numbers. Like every page, a pure function of
the records.

>>> pages([], "results")
{}
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import partial
from typing import Any

from harness.config import BATCH_SPLIT_KEYS, OBJECTIVE_KEYS, REPLICATE_KEYS
from harness.identity import config_id, distinctive, variant
from harness.report.tables import (
    MISSING,
    UNMEASURED_NOTE,
    Page,
    comparable_groups,
    difference_text,
    pairs_text,
    replicate_score,
    row_label,
    row_order,
    score_text,
)
from harness.stats import Estimate, significant_difference

AXES = ("model", "train_noise")  # what varies along a map
ROLES = (("test", "in-domain"), ("ood", "OOD"))

Record = dict[str, Any]
Point = tuple[str, float]  # (starting model, noise rate)


def map_id(hparams: dict[str, Any]) -> str:
    """The configuration id without the map's axes and the batch split: the points of a map share it.

    >>> map_id({"model": "a", "train_noise": 0.2, "lr": 1e-3}) == map_id({"model": "b", "lr": 1e-3})
    True
    """
    return config_id({k: v for k, v in hparams.items() if k not in AXES + BATCH_SPLIT_KEYS})


def _point(record: Record) -> Point:
    return record["hparams"].get("model") or record["backbone"], float(
        record["hparams"].get("train_noise", 0.0)
    )


def pages(records: list[Record], source: str) -> dict[str, Page]:
    """``{"continuum-<task>-<map id>.md": Page}`` for every map of two or more points with SFT."""
    bases = {(r["task"], r["backbone"]): r for r in records if r["method"] == "base"}
    maps: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        if record["method"] != "base":
            maps[record["task"], map_id(record["hparams"])].append(record)
    out = {}
    for (task, mid), found in sorted(maps.items()):
        runs = comparable_groups(found)[0][1]  # one environment and evaluation per page
        points = {_point(r) for r in runs if variant(r["method"], r["hparams"]) == "sft"}
        if len(points) < 2 or len({r["method"] for r in runs}) < 2:
            continue
        name = f"continuum-{task}-{mid}"
        out[f"{name}.md"] = _page(name, task, mid, runs, bases, source)
    return out


def strength(base: Record | None) -> float | None:
    """The mean probability a starting point gives the training targets (its base record's)."""
    histogram = (base or {}).get("token_probs") or {}
    return histogram.get("mean")


def _cells(runs: list[Record]) -> dict[str, dict[Point, list[Record]]]:
    """``{variant: {point: replicates}}`` in the order of :func:`row_order` (``dft`` and ``dft-floor0.1`` are
    two lines, never pooled as seeds of one)."""
    cells: dict[str, dict[Point, list[Record]]] = defaultdict(lambda: defaultdict(list))
    method_of: dict[str, str] = {}
    for record in sorted(runs, key=lambda r: r["hparams"].get("seed", -1)):
        key = variant(record["method"], record["hparams"])
        cells[key][_point(record)].append(record)
        method_of[key] = record["method"]
    return {key: cells[key] for key in sorted(cells, key=lambda key: row_order(key, method_of[key]))}


def _label(cells, key: str) -> str:
    return row_label(next(iter(cells[key].values()))[0])


def _difference(cells, method: str, point: Point, role: str) -> tuple[Estimate, Estimate] | None:
    ours = replicate_score(cells[method].get(point, []), role) if point in cells[method] else None
    sft = replicate_score(cells["sft"].get(point, []), role) if point in cells["sft"] else None
    return None if ours is None or sft is None else (ours, sft)


def _page(name: str, task: str, mid: str, runs: list[Record], bases, source: str) -> Page:
    cells = _cells(runs)
    others = [m for m in cells if m != "sft"]
    backbone = {_point(r)[0]: r["backbone"] for r in runs}
    strengths = {model: strength(bases.get((task, backbone[model]))) for model in backbone}
    clean = sorted({p for p in cells["sft"] if p[1] == 0.0}, key=lambda p: (_order(strengths[p[0]]), p[0]))
    noisy_models = [m for m in backbone if len({p[1] for p in cells["sft"] if p[0] == m}) > 1]
    seeds = sorted({len(reps) for points in cells.values() for reps in points.values()})
    fixed = {
        k: v
        for k, v in distinctive(runs[0]["hparams"]).items()
        if k not in OBJECTIVE_KEYS | REPLICATE_KEYS | set(AXES + BATCH_SPLIT_KEYS)
    }
    lines = [
        f"# Where each objective beats SFT: `{task}` · map `{mid}`",
        "",
        f"Generated by `python -m harness.leaderboard` from {len(runs)} records in `{source}/` - do not"
        " edit by hand.",
        "",
        "Each row is one starting point of training (a backbone, or a rung of a warm-up ladder made by"
        " `python -m harness.continuum`) or one demonstration-noise rate; each cell is the objective's"
        " score minus SFT's at that point, in percentage points, the mean over the seeds ± the standard"
        " error of the difference. In-domain is the mean of the task's test splits, OOD the mean of its"
        " out-of-domain splits. Strength: the mean probability the starting point gives the training"
        " targets' tokens (its base record's histogram, `--prob-rows`), the position on the"
        " model-capability continuum.",
        "",
        f"Fixed hyperparameters: {pairs_text(fixed)}; seeds per point: {' to '.join(map(str, sorted({seeds[0], seeds[-1]})))}.",
    ]
    if seeds[0] < 2:
        lines += ["", UNMEASURED_NOTE]
    figures = []
    if len(clean) >= 2:
        lines += ["", "## Against the starting point's strength (no noise)", ""]
        base_of = {p: bases.get((task, backbone[p[0]])) for p in clean}
        lines += _table(
            cells,
            others,
            clean,
            ("starting point", lambda p: f"`{_short(p[0])}`"),
            ("strength p̄", lambda p: _strength_text(strengths[p[0]])),
            *[
                (f"its own {label}", lambda p, role=role: score_text(_base_score(base_of[p], role)))
                for role, label in ROLES
            ],
        )
        xs = {p: strengths[p[0]] for p in clean}
        if all(x is not None for x in xs.values()):
            figures.append(
                _figure(
                    name,
                    task,
                    cells,
                    others,
                    clean,
                    xs,
                    "strength",
                    "prior strength (mean p of the training targets)",
                )
            )
    for model in noisy_models:
        points = sorted(p for p in cells["sft"] if p[0] == model)
        lines += ["", f"## Against demonstration noise (from `{_short(model)}`)", ""]
        lines += _table(cells, others, points, ("--train-noise", lambda p: f"{p[1]:g}"))
        xs = {p: p[1] for p in points}
        figures.append(
            _figure(
                name,
                task,
                cells,
                others,
                points,
                xs,
                f"noise-{len(figures)}",
                "--train-noise (fraction of rows with a wrong answer)",
            )
        )
    lines += ["", "## What this map shows", "", *_summary(cells, others, clean, noisy_models)]
    lines += [line for _, alt, path, _ in figures for line in ("", f"![{alt}]({path})")]
    return Page("\n".join(lines) + "\n", [(path, draw) for _, _, path, draw in figures])


def _order(value: float | None) -> float:
    return math.inf if value is None else value


def _strength_text(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.3f}"


def _short(model: str) -> str:
    """A starting model's name without the folder it sits in (``runs/x/warmup-64/model``: ``warmup-64``);
    a trained start named by its training (``tiny + sft on 64 rows (4fea2465, seed 0)``) as it is."""
    if " + " in model:
        return model
    parts = model.rstrip("/").split("/")
    return parts[-2] if len(parts) > 1 and parts[-1] == "model" else parts[-1]


def _base_score(base: Record | None, role: str) -> Estimate | None:
    return None if base is None else replicate_score([base], role)


def _table(cells, others: list[str], points: list[Point], *columns) -> list[str]:
    """One row per point: the ``columns`` (title, text of a point), SFT's scores, each objective
    minus SFT."""
    header = [title for title, _ in columns] + [f"SFT {role}" for _, role in ROLES]
    header += [f"{_label(cells, m)} − SFT {role}" for m in others for _, role in ROLES]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for point in points:
        row = [text(point) for _, text in columns]
        row += [score_text(replicate_score(cells["sft"][point], role)) for role, _ in ROLES]
        for method in others:
            for role, _ in ROLES:
                pair = _difference(cells, method, point, role)
                row.append(MISSING if pair is None else _signed_with_error(*pair))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _signed_with_error(ours: Estimate, sft: Estimate) -> str:
    return f"{difference_text(ours, sft)} ± {100 * math.hypot(ours.stderr, sft.stderr):.1f}"


def _figure(name, task, cells, others, points, xs, suffix, xlabel):
    from harness.report import plots  # import cost: matplotlib, only when a figure is drawn

    panels = []
    for role, title in ROLES:
        series = []
        for method in others:
            line = [
                (xs[p], ours.value - sft.value, math.hypot(ours.stderr, sft.stderr))
                for p in points
                if (pair := _difference(cells, method, p, role)) is not None
                for ours, sft in [pair]
            ]
            if line:
                series.append((_label(cells, method), sorted(line)))
        if series:
            panels.append((f"{title}: objective − SFT", series))
    title = f"{task}: each objective minus SFT against {suffix.split('-')[0]}"
    draw = partial(plots.accuracy_panels, panels, xlabel, title, ylabel="difference (percentage points)")
    return suffix, f"objective minus SFT against {suffix.split('-')[0]}", f"plots/{name}-{suffix}.png", draw


def _summary(cells, others: list[str], clean: list[Point], noisy_models: list[str]) -> list[str]:
    """A sentence naming the objectives above SFT anywhere (or none), then a table: per objective and
    axis, at how many points it is above SFT, and significantly so where seeds measured it."""
    groups = ([("strength", clean)] if len(clean) >= 2 else []) + [
        (f"noise from `{_short(m)}`", sorted(p for p in cells["sft"] if p[0] == m)) for m in noisy_models
    ]
    columns = [(axis, points, role, label) for axis, points in groups for role, label in ROLES]
    rows, ahead, all_measured = [], [], True
    for method in others:
        row, above_any, wins_any, compared, measured = [], 0, 0, 0, True
        for _, points, role, _ in columns:
            pairs = [pair for p in points if (pair := _difference(cells, method, p, role)) is not None]
            if not pairs:
                row.append(MISSING)
                continue
            above = sum(ours.value > sft.value for ours, sft in pairs)
            above_any, compared = above_any + above, compared + len(pairs)
            significant = [significant_difference(ours, sft) for ours, sft in pairs]
            if any(s is None for s in significant):
                row.append(f"{above} of {len(pairs)} (seeds unmeasured)")
                measured = False
                continue
            wins = sum(bool(s) and o.value > t.value for s, (o, t) in zip(significant, pairs))
            losses = sum(bool(s) and o.value < t.value for s, (o, t) in zip(significant, pairs))
            wins_any += wins
            row.append(f"{above} of {len(pairs)} (significantly: {wins} above, {losses} below)")
        if all(cell == MISSING for cell in row):
            continue  # no point where both it and SFT trained
        all_measured = all_measured and measured
        if above_any:
            where = f"{_label(cells, method)} at {above_any} of {compared} points"
            ahead.append(f"{where}, {wins_any or 'none'} significantly" if measured else where)
        rows.append("| " + " | ".join([_label(cells, method), *row]) + " |")
    if not rows:
        return ["No objective besides SFT has a point to compare."]
    if not ahead:
        headline = "**No objective is above SFT at any point of this map**, in-domain or out of domain."
    else:
        headline = f"Above SFT somewhere: {'; '.join(ahead)}."
    if not all_measured:
        headline += (
            " With one seed at some points, the seed variance there is unmeasured: nothing is significant."
        )
    header = ["objective", *[f"{label} along {axis}" for axis, _, _, label in columns]]
    table = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns), *rows]
    return [headline, "", "Points where the objective is above SFT, of the points it has:", "", *table]
