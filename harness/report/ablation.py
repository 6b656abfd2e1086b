"""Ablation pages: learning rate x batch size grids per method, and each objective's − SFT grid.

Runs of one task and backbone whose hyperparameters differ only in the learning rate and the
(global) batch size form a grid; the micro-batch and the number of ranks may differ too, since they
do not change the update (the loss is normalized per optimizer step). A grid with at least two cells
gets ``ablation-<task>-<backbone>-<grid id>.md``: for the in-domain score (the mean of the test
splits) and for the out-of-domain mean, one table per method with the best cell starred, and for
each objective trained beside SFT (DFT first) its − SFT table, with the significant differences
starred and the cell where the objective gains most starred;
then the figures: accuracy against learning rate for each batch size, accuracy against step when
the runs kept curves, and the token-probability histograms of the base model and of each method's
best cell. Like every page, a pure function of the records.

>>> pages([], "results")
{}
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any

from harness.config import BATCH_SPLIT_KEYS, OBJECTIVE_KEYS, REPLICATE_KEYS, SWEEP_AXES
from harness.identity import backbone_slug, config_id, distinctive, variant
from harness.objectives import BASE, BASELINE
from harness.report.tables import (
    UNMEASURED_NOTE,
    Page,
    comparable_groups,
    grouped_provenance_note,
    pairs_text,
    pooled_variances,
    replicate_label,
    replicate_score,
    row_label,
    row_order,
    score_text,
    signed_difference,
    step_panels,
    summary_score,
)
from harness.stats import FDR, discoveries, welch_p_value

GRID_KEYS = SWEEP_AXES
SPLIT_KEYS = BATCH_SPLIT_KEYS  # may differ between the cells of one grid: not the update
ROLES = (("test", "In-domain (mean of the test splits)"), ("ood", "Out-of-domain mean"))
BEST = " ★"

Record = dict[str, Any]


def grid_id(hparams: dict[str, Any]) -> str:
    """The configuration id without the grid's axes: the cells of one sweep share it.

    >>> grid_id({"lr": 1e-3, "batch_size": 16, "epochs": 1}) == grid_id({"lr": 2e-3, "batch_size": 32, "epochs": 1})
    True
    """
    return config_id({k: v for k, v in hparams.items() if k not in GRID_KEYS + SPLIT_KEYS})


def pages(records: list[Record], source: str) -> dict[str, Page]:
    """``{"ablation-<task>-<backbone>-<grid id>.md": Page}`` for every grid of two or more cells."""
    bases = {(r["task"], r["backbone"]): r for r in records if r["method"] == BASE}
    grids: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        hparams = record["hparams"]
        # A record without a numeric lr and batch size (made by hand or by another tool) is in no grid.
        if record["method"] != BASE and all(
            isinstance(hparams.get(key), (int, float)) and not isinstance(hparams.get(key), bool)
            for key in GRID_KEYS
        ):
            grids[record["task"], record["backbone"], grid_id(hparams)].append(record)
    out = {}
    for (task, backbone, gid), found in sorted(grids.items()):
        # One environment and evaluation per page: cells are never compared across them.
        groups = comparable_groups(found)
        runs = groups[0][1]
        if len({_cell(r) for r in runs}) < 2:
            continue
        name = f"ablation-{task}-{backbone_slug(backbone)}-{gid}"
        page = _page(name, task, backbone, gid, runs, bases.get((task, backbone)), source)
        if len(groups) > 1:
            left_out = sum(len(group) for _, group in groups[1:])
            warning = (
                f"⚠ {left_out} more records of this grid come from other environments or evaluations"
                f" ({'; '.join(label for label, _ in groups[1:])}); the page holds those with"
                f" {groups[0][0]} only (the domain page shows every group)."
            )
            header, rest = page.text.split("\n\n", 1)
            page = Page(f"{header}\n\n{warning}\n\n{rest}", page.plots)
        out[f"{name}.md"] = page
    return out


def _cell(record: Record) -> tuple[float, int]:
    return float(record["hparams"]["lr"]), int(record["hparams"]["batch_size"])


Cells = dict[tuple[float, int], list[Record]]  # (lr, batch) -> the records of its seeds


def _methods(runs: list[Record]) -> dict[str, Cells]:
    """``{variant: {(lr, batch): replicates}}`` in the order of :func:`row_order`. Two
    configurations of one cell (split differently over ranks) keep the one with the smaller
    configuration id."""
    grouped: dict[str, dict[tuple[float, int], dict[str, list[Record]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    by_seed = sorted(runs, key=lambda r: r["hparams"].get("seed", -1))  # whatever the input order
    for record in by_seed:
        cell = grouped[variant(record["method"], record["hparams"])][_cell(record)]
        cell[config_id(record["hparams"])].append(record)
    methods = {
        key: {cell: configs[min(configs)] for cell, configs in cells.items()}
        for key, cells in grouped.items()
    }
    method_of = {key: next(iter(cells.values()))[0]["method"] for key, cells in methods.items()}
    return {key: methods[key] for key in sorted(methods, key=lambda key: row_order(key, method_of[key]))}


def _label(cells: Cells) -> str:
    return row_label(next(iter(cells.values()))[0])


def _page(
    name: str, task: str, backbone: str, gid: str, runs: list[Record], base: Record | None, source: str
) -> Page:
    methods = _methods(runs)
    lrs = sorted({lr for cells in methods.values() for lr, _ in cells})
    batches = sorted({batch for cells in methods.values() for _, batch in cells})
    first = runs[0]["hparams"]
    varying = OBJECTIVE_KEYS | REPLICATE_KEYS | set(GRID_KEYS + SPLIT_KEYS)
    fixed = {k: v for k, v in distinctive(first).items() if k not in varying}
    seeds = sorted({len(replicates) for cells in methods.values() for replicates in cells.values()})
    lines = [
        f"# Ablation: `{task}` · `{backbone}` · grid `{gid}`",
        "",
        f"Generated by `python -m harness.leaderboard` from {len(runs) + (base is not None)} records in"
        f" `{source}/` - do not edit by hand.",
        "",
        f"Learning rate (rows) × global batch size (columns), {len(lrs)} × {len(batches)} cells for"
        f" {', '.join(_label(c) for c in methods.values())}. Scores are percentages, the mean over each"
        " cell's seeds ± a standard error holding the evaluation and the seed-to-seed variance; ★ marks"
        " the best cell of a table (in an objective − SFT table, DFT − SFT and the others: where the"
        " objective gains most); `*` marks a discovery among the page's objective − SFT differences"
        f" (two-sided Welch t-tests over the seeds, Benjamini–Hochberg at a {FDR:.0%} false-discovery"
        " rate over all of them: {family}); a cell's seed variance is its own, or where smaller the"
        " method's pooled over the grid's cells. – is a cell not run.",
        "",
        f"Fixed hyperparameters: {pairs_text(fixed)}; seeds per cell: {' to '.join(map(str, sorted({seeds[0], seeds[-1]})))}.",
        "",
        _batch_split_note(runs),
    ]
    if seeds[0] < 2:
        lines += ["", UNMEASURED_NOTE]
    discovered = _discoveries(methods)
    tested = sum(found is not None for found in discovered.values())
    lines = [line.replace("{family}", f"{tested} differences") for line in lines]
    if base is not None:
        parts = [
            f"{label} {score_text(replicate_score([base], role))}"
            for role, label in (("test", "in-domain"), ("ood", "OOD mean"))
        ]
        lines += ["", f"Base model (no training): {', '.join(parts)}."]
    for role, title in ROLES:
        if not any(summary_score(r, role) for r in runs):
            continue
        lines += ["", f"## {title}"]
        for cells in methods.values():
            scores = {cell: _score(cells, cell, role) for cell in cells}
            lines += ["", f"### {_label(cells)}", "", *_grid(lrs, batches, scores, score_text)]
            lines += ["", grouped_provenance_note(backbone, [r for reps in cells.values() for r in reps])]
        if BASELINE in methods:
            for key, cells in methods.items():
                if key == BASELINE:
                    continue
                label = _label(cells)
                pairs = {
                    cell: (_score(cells, cell, role), _score(methods[BASELINE], cell, role))
                    for cell, replicates in cells.items()
                    if cell in methods[BASELINE]
                }
                diffs = {
                    cell: (pair, discovered.get((key, cell, role)))
                    for cell, pair in pairs.items()
                    if None not in pair
                }
                lines += ["", f"### {label} − SFT (percentage points)", ""]
                lines += _grid(lrs, batches, diffs, _difference_text, key=_gain)
    figures = _figures(name, task, methods, base)
    lines += [line for _, alt, path, _ in figures for line in ("", f"![{alt}]({path})")]
    return Page("\n".join(lines) + "\n", [(path, draw) for _, _, path, draw in figures])


def _score(cells: Cells, cell: tuple[float, int], role: str):
    """A cell's estimate, its seed variance at least the method's pooled over the grid's cells."""
    return replicate_score(cells[cell], role, pooled=pooled_variances(cells.values(), role))


def _discoveries(methods) -> dict[tuple[str, tuple[float, int], str], bool | None]:
    """``{(objective, cell, role): discovery}`` over every objective − SFT difference of the page:
    Welch p-values, Benjamini-Hochberg over the family (None: one seed, not tested)."""
    keys, p_values = [], []
    for role, _ in ROLES:
        for key, cells in methods.items():
            if key == BASELINE or BASELINE not in methods:
                continue
            for cell in cells:
                if cell not in methods[BASELINE]:
                    continue
                ours, sft = _score(cells, cell, role), _score(methods[BASELINE], cell, role)
                if ours is not None and sft is not None:
                    keys.append((key, cell, role))
                    p_values.append(welch_p_value(ours, sft))
    return dict(zip(keys, discoveries(p_values)))


def _gain(item) -> float:
    (ours, sft), _ = item
    return ours.value - sft.value


def _difference_text(item) -> str:
    (ours, sft), discovery = item
    return signed_difference(ours.value, sft.value) + ("*" if discovery else "")


def _grid(lrs, batches, values: dict, text, key=lambda score: score.value) -> list[str]:
    """A markdown table, rows = learning rates, columns = batch sizes; the best value(s) starred."""
    shown = {cell: round(100 * key(value), 1) for cell, value in values.items() if value is not None}
    best = max(shown.values()) if shown else None
    lines = [
        "| lr \\ batch | " + " | ".join(str(b) for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for lr in lrs:
        cells = []
        for batch in batches:
            value = values.get((lr, batch))
            if value is None:
                cells.append("–")
                continue
            star = BEST if len(shown) > 1 and shown[(lr, batch)] == best else ""
            cells.append(text(value) + star)
        lines.append(f"| {lr:g} | " + " | ".join(cells) + " |")
    return lines


def _batch_split_note(runs: list[Record]) -> str:
    """How each global batch was split: ``32 = 16 × 2 accumulation × 1 rank``."""
    splits = set()
    for record in runs:  # the seeds of a cell share their split
        hparams, data = record["hparams"], record["data"]
        world = int(hparams.get("world_size", 1))
        micro = hparams.get("micro_batch_size")
        accumulation = data.get("gradient_accumulation")
        if micro is None or accumulation is None:
            continue
        splits.add((int(hparams["batch_size"]), int(micro), int(accumulation), world))
    if not splits:
        return "How each batch was split is not recorded."
    parts = [
        f"{batch} = {micro} × {acc} step{'s' if acc != 1 else ''} × {world} rank{'s' if world != 1 else ''}"
        for batch, micro, acc, world in sorted(splits)
    ]
    return "Global batch = micro-batch × gradient accumulation × ranks: " + "; ".join(parts) + "."


def _figures(name: str, task: str, methods, base: Record | None) -> list[tuple[str, str, str, Any]]:
    from harness.report import plots  # import cost: matplotlib, only when a figure is drawn

    figures = []
    batches = sorted({batch for cells in methods.values() for _, batch in cells})
    styles = ["-", "--", ":", "-."]
    panels, panel_styles = [], []
    for role, title in ROLES:
        series, series_styles = [], []
        for cells in methods.values():
            label = _label(cells)
            for index, batch in enumerate(batches):
                points = [
                    (lr, score.value, score.stderr)
                    for (lr, b), replicates in sorted(cells.items())
                    if b == batch and (score := replicate_score(replicates, role)) is not None
                ]
                if points:
                    series.append((f"{label}, batch {batch}", points))
                    series_styles.append(styles[index % len(styles)])
        if series:
            panels.append((title, series))
            panel_styles = series_styles  # the same series in both panels
    if panels:
        title = f"{task}: accuracy vs learning rate"
        draw = partial(plots.accuracy_panels, panels, "learning rate", title, log_x=True, styles=panel_styles)
        figures.append(("lr", "accuracy vs learning rate", f"plots/{name}-lr.png", draw))

    with_curves = [
        (cell, record, replicates)
        for cells in methods.values()
        for cell, replicates in sorted(cells.items())
        for record in replicates
        if record.get("curve")
    ]
    curves = [
        (f"{replicate_label(record, replicates)}, lr {lr:g}, batch {batch}", record["curve"])
        for (lr, batch), record, replicates in with_curves
    ]
    if curves:
        panels_by_step = step_panels(curves, ROLES)
        cells_order = sorted({cell for cells in methods.values() for cell in cells})
        step_styles = [styles[cells_order.index(cell) % len(styles)] for cell, _, _ in with_curves]
        title = f"{task}: accuracy vs step"
        draw = partial(plots.accuracy_panels, panels_by_step, "training step", title, styles=step_styles)
        figures.append(("steps", "accuracy vs training step", f"plots/{name}-steps.png", draw))

    histograms = [(BASE, base["token_probs"])] if base is not None and base.get("token_probs") else []
    for cells in methods.values():
        best = max(
            (
                (score.value, -lr, -batch, replicates)
                for (lr, batch), replicates in cells.items()
                if (score := replicate_score(replicates, "test")) is not None
                and any(r.get("token_probs") for r in replicates)
            ),
            key=lambda item: item[:3],
            default=None,
        )
        if best is not None:
            replicates = best[3]
            first = next(r for r in replicates if r.get("token_probs"))
            lr, batch = _cell(first)
            label = f"{replicate_label(first, replicates)}, lr {lr:g}, batch {batch}"
            histograms.append((label, first["token_probs"]))
    if len(histograms) > 1:
        title = f"{task}: training-token probabilities, best cell of each method"
        draw = partial(plots.token_probabilities, histograms, title)
        figures.append(("tokens", "probabilities of the training targets", f"plots/{name}-tokens.png", draw))
    return figures
