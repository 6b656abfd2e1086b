"""Continuum pages: where each objective beats SFT, from starting points of growing competence,
under demonstration noise and in another solution style (the model-capability continuum of arXiv
2510.00526, and the paper's own situation of demonstrations that are not the backbone's).

Runs of one task whose hyperparameters differ only in the starting model (``--model``: a backbone,
or a warm-up made by :mod:`harness.continuum`), ``--train-noise`` and ``--train-style`` form one
map; the batch split may differ too. A map with at least two points gets
``continuum-<task>-<map id>.md``:

- the **starting points**, ordered by their own in-domain score (their base records): the target a
  start was made for and how far it is from it, its own in-domain and OOD scores, and its two
  strengths (the mean probability it gives every training target, and the tokens that decide the
  grade alone);
- **every point of the map** (start × demonstrations: the task's own style, each noise rate, each
  other style): SFT's scores and each objective minus SFT, in-domain (mean of the test splits) and
  out of domain (mean of the OOD splits), in percentage points over the seeds with the standard
  error of the difference;
- **stars that survive many comparisons**: each difference's Welch p-value over the seeds, and the
  Benjamini-Hochberg correction over all of the page's differences at a 5% false-discovery rate
  (:func:`harness.stats.discoveries`); `*` marks a discovery. Every p-value and q-value is in the
  page's analysis table;
- a summary computed from the same numbers, and plots against the start's score and against noise.

Like every page, a pure function of the records.

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
from harness.objectives import BASE, BASELINE
from harness.report.tables import (
    MISSING,
    UNMEASURED_NOTE,
    Page,
    comparable_groups,
    pairs_text,
    pooled_variances,
    replicate_score,
    row_label,
    row_order,
    score_text,
    signed_difference,
)
from harness.stats import FDR, Estimate, benjamini_hochberg, welch_p_value

AXES = ("model", "train_noise", "train_style")  # what varies along a map
ROLES = (("test", "in-domain"), ("ood", "OOD"))
OWN = "own style"

Record = dict[str, Any]
Point = tuple[str, float, str]  # (starting model, noise rate, style: "" for the task's own)
Key = tuple[Point, str, str]  # (point, objective, role)


def map_id(hparams: dict[str, Any]) -> str:
    """The configuration id without the map's axes and the batch split: the points of a map share it.

    >>> map_id({"model": "a", "train_noise": 0.2, "lr": 1e-3}) == map_id({"model": "b", "lr": 1e-3})
    True
    """
    return config_id({k: v for k, v in hparams.items() if k not in AXES + BATCH_SPLIT_KEYS})


def _point(record: Record) -> Point:
    hparams = record["hparams"]
    return (
        hparams.get("model") or record["backbone"],
        float(hparams.get("train_noise") or 0.0),
        hparams.get("train_style") or "",
    )


def pages(records: list[Record], source: str) -> dict[str, Page]:
    """``{"continuum-<task>-<map id>.md": Page}`` for every map of two or more points with SFT."""
    bases = {(r["task"], r["backbone"]): r for r in records if r["method"] == BASE}
    maps: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        if record["method"] != BASE:
            maps[record["task"], map_id(record["hparams"])].append(record)
    out = {}
    for (task, mid), found in sorted(maps.items()):
        runs = comparable_groups(found)[0][1]  # one environment and evaluation per page
        points = {_point(r) for r in runs if variant(r["method"], r["hparams"]) == BASELINE}
        if len(points) < 2 or len({r["method"] for r in runs}) < 2:
            continue
        name = f"continuum-{task}-{mid}"
        out[f"{name}.md"] = _page(name, task, mid, runs, bases, source)
    return out


def strength(base: Record | None, part: str | None = None) -> float | None:
    """The mean probability a starting point gives the training targets (its base record's
    histogram), or with ``part="deciding"`` the tokens that decide the grade alone."""
    histogram = (base or {}).get("token_probs") or {}
    if part is not None:
        histogram = histogram.get(part) or {}
    return histogram.get("mean")


def own_score(base: Record | None, role: str) -> Estimate | None:
    return None if base is None else replicate_score([base], role)


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
    """The objective's and SFT's estimates at ``point``, each with its seed variance at least the
    method's pooled over the map's points (a cell's three seeds can agree by chance)."""
    ours = _score(cells, method, point, role)
    sft = _score(cells, BASELINE, point, role)
    return None if ours is None or sft is None else (ours, sft)


def _score(cells, method: str, point: Point, role: str) -> Estimate | None:
    if point not in cells[method]:
        return None
    return replicate_score(cells[method][point], role, pooled=pooled_variances(cells[method].values(), role))


def condition(point: Point) -> str:
    """How a point's demonstrations differ from the task's own: ``own style``, ``noise 0.2``,
    ``numbered style``."""
    _, rate, style = point
    parts = ([f"noise {rate:g}"] if rate else []) + ([f"{style} style"] if style else [])
    return ", ".join(parts) or OWN


class Comparisons:
    """Every objective − SFT difference of a page with its Welch p-value, and the Benjamini-Hochberg
    q-values over the whole family (the differences whose seeds were measured)."""

    def __init__(self, cells, others: list[str], points: list[Point]):
        self.pairs: dict[Key, tuple[Estimate, Estimate]] = {}
        for point in points:
            for method in others:
                for role, _ in ROLES:
                    if (pair := _difference(cells, method, point, role)) is not None:
                        self.pairs[point, method, role] = pair
        keys = list(self.pairs)
        self.p = {key: welch_p_value(*self.pairs[key]) for key in keys}
        self.q = dict(zip(keys, benjamini_hochberg([self.p[key] for key in keys])))

    @property
    def family(self) -> int:
        return sum(p is not None for p in self.p.values())

    @property
    def measured(self) -> bool:
        return all(p is not None for p in self.p.values())

    def discovery(self, key: Key) -> bool:
        q = self.q.get(key)
        return q is not None and q <= FDR

    def text(self, key: Key) -> str:
        if key not in self.pairs:
            return MISSING
        ours, sft = self.pairs[key]
        star = "*" if self.discovery(key) else ""
        spread = 100 * math.hypot(ours.stderr, sft.stderr)
        return f"{signed_difference(ours.value, sft.value)}{star} ± {spread:.1f}"


def _page(name: str, task: str, mid: str, runs: list[Record], bases, source: str) -> Page:
    cells = _cells(runs)
    others = [m for m in cells if m != BASELINE]
    backbone = {_point(r)[0]: r["backbone"] for r in runs}
    base_of = {model: bases.get((task, backbone[model])) for model in backbone}
    starts = sorted(base_of, key=lambda m: (_order(own_score(base_of[m], "test")), _order_p(base_of[m]), m))
    points = sorted(cells[BASELINE], key=lambda p: (starts.index(p[0]), p[2], p[1]))
    tests = Comparisons(cells, others, points)
    seeds = sorted({len(reps) for by_point in cells.values() for reps in by_point.values()})
    fixed = {
        k: v
        for k, v in distinctive(runs[0]["hparams"]).items()
        if k not in OBJECTIVE_KEYS | REPLICATE_KEYS | set(AXES + BATCH_SPLIT_KEYS)
    }
    names = {model: _start_name(model, base_of[model]) for model in starts}
    lines = [
        f"# Where each objective beats SFT: `{task}` · map `{mid}`",
        "",
        f"Generated by `python -m harness.leaderboard` from {len(runs)} records in `{source}/` - do not"
        " edit by hand.",
        "",
        "Each row of the map is one starting point of training (the backbone, or a warm-up made by"
        " `python -m harness.continuum` to a target of its own in-domain score) with one kind of"
        " demonstrations (the task's own style, a noise rate: that fraction of rows with another row's"
        " answer, or another solution style); each cell is the objective's score minus SFT's there, in"
        " percentage points, the mean over the seeds ± the standard error of the difference. In-domain"
        " is the mean of the task's test splits, OOD the mean of its out-of-domain splits.",
        "",
        f"`*`: a discovery at a {FDR:.0%} false-discovery rate, Benjamini–Hochberg over the page's"
        f" {tests.family} differences (Welch t-test p-values over the seeds; every p and q in the analysis"
        " at the end). Unstarred is not evidence of no difference. A point's seed variance is its own, or"
        " where that is smaller the method's pooled over the map's points (with their degrees of"
        " freedom): three seeds that happen to agree do not make a difference surer than the method's"
        " runs are.",
        "",
        f"Fixed hyperparameters: {pairs_text(fixed)}; seeds per point: {' to '.join(map(str, sorted({seeds[0], seeds[-1]})))}.",
    ]
    if seeds[0] < 2:
        lines += ["", UNMEASURED_NOTE]
    lines += ["", "## Starting points", "", *_starts_table(starts, base_of, names)]
    lines += _misses(starts, base_of, names)
    lines += ["", "## Every point of the map", "", *_map_table(cells, others, points, names, tests)]
    findings, table = _summary(cells, others, points, names, tests)
    lines += ["", "## What this map shows", "", *[line for text in findings for line in (text, "")], *table]
    figures = _figures(name, task, cells, others, points, starts, base_of, names)
    lines += [line for _, alt, path, _ in figures for line in ("", f"![{alt}]({path})")]
    lines += [
        "",
        "## Analysis: every difference, its p-value and q-value",
        "",
        *_analysis(cells, names, tests),
    ]
    return Page("\n".join(lines) + "\n", [(path, draw) for _, _, path, draw in figures], findings)


def _order(score: Estimate | None) -> float:
    return math.inf if score is None else score.value


def _order_p(base: Record | None) -> float:
    value = strength(base)
    return math.inf if value is None else value


def _short(model: str) -> str:
    """A starting model's name without the folder it sits in (``runs/x/warmup-64/model``: ``warmup-64``);
    a trained start named by its training (``tiny + sft on 64 rows (4fea2465, seed 0)``) as it is."""
    if " + " in model:
        return model
    parts = model.rstrip("/").split("/")
    return parts[-2] if len(parts) > 1 and parts[-1] == "model" else parts[-1]


def _target(base: Record | None) -> float | None:
    start = (base or {}).get("start") or {}
    return start.get("target")


def _start_name(model: str, base: Record | None) -> str:
    """``start 50`` for a warm-up made to a target (its target), else the model's short name."""
    target = _target(base)
    return f"start {target:g}" if target is not None else f"`{_short(model)}`"


def _starts_table(starts: list[str], base_of, names) -> list[str]:
    header = [
        "start",
        "target",
        "its own in-domain",
        "its own OOD",
        "p̄ all targets",
        "p̄ deciding tokens",
        "what it is",
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---:|---|"]
    for model in starts:
        base = base_of[model]
        target = _target(base)
        made = (base or {}).get("start") or {}
        if made.get("steps"):
            tried = ", ".join(f"{p['steps']}: {100 * p['in_domain']:.1f}" for p in made.get("probes") or [])
            what = f"`{_short(model)}`: SFT for {made['steps']} steps on the warm-up pool (tried {tried})"
        else:
            what = f"`{_short(model)}`"
        row = [
            names[model],
            MISSING if target is None else f"{target:g}",
            score_text(own_score(base, "test")),
            score_text(own_score(base, "ood")),
            _strength_text(strength(base)),
            _strength_text(strength(base, "deciding")),
            what,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _misses(starts: list[str], base_of, names) -> list[str]:
    """A line for each start whose own in-domain score is further from its target than the map's
    tolerance allowed: it is kept, and said so."""
    lines = []
    for model in starts:
        base = base_of[model]
        made = (base or {}).get("start") or {}
        score = own_score(base, "test")
        if not made or score is None:
            continue
        miss = 100 * score.value - made["target"]
        if abs(miss) > made.get("tolerance", 0):
            lines.append(
                f"⚠ {names[model]} scores {100 * score.value:.1f} in-domain: it misses its target {made['target']:g}"
                f" by {abs(miss):.1f} points (tolerance {made.get('tolerance', 0):g}): no warm-up length tried"
                " came closer. It stays on the map as what it is."
            )
    return ["", *lines] if lines else []


def _strength_text(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.3f}"


def _map_table(cells, others: list[str], points: list[Point], names, tests: Comparisons) -> list[str]:
    header = ["start", "demonstrations"] + [f"SFT {role}" for _, role in ROLES]
    header += [f"{_label(cells, m)} − SFT {role}" for m in others for _, role in ROLES]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for point in points:
        row = [names[point[0]], condition(point)]
        row += [score_text(_score(cells, BASELINE, point, role)) for role, _ in ROLES]
        row += [tests.text((point, method, role)) for method in others for role, _ in ROLES]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _summary(cells, others: list[str], points: list[Point], names, tests: Comparisons):
    """The findings (sentences naming where each objective is above or below SFT after the
    correction, or that it is nowhere: the index repeats them), and a table: per objective and kind
    of demonstrations, at how many points it is above SFT, and how many differences are discoveries."""
    conditions = list(dict.fromkeys(condition(p) for p in points))
    header = ["objective", *[f"{c}: {label}" for c in conditions for _, label in ROLES]]
    rows, above, below = [], [], []
    for method in others:
        row = [_label(cells, method)]
        for kind in conditions:
            for role, _ in ROLES:
                keys = [
                    (p, method, role)
                    for p in points
                    if condition(p) == kind and (p, method, role) in tests.pairs
                ]
                if not keys:
                    row.append(MISSING)
                    continue
                ahead = sum(tests.pairs[k][0].value > tests.pairs[k][1].value for k in keys)
                found = [k for k in keys if tests.discovery(k)]
                up = [k for k in found if tests.pairs[k][0].value > tests.pairs[k][1].value]
                down = [k for k in found if k not in up]
                above += up
                below += down
                row.append(f"{ahead} of {len(keys)} ({len(up)}* above, {len(down)}* below)")
        rows.append("| " + " | ".join(row) + " |")
    if not tests.pairs:
        return ["No objective besides SFT has a point to compare."], []
    lines = []
    if not tests.measured:
        lines.append(
            "With one seed at some points the seed variance there is unmeasured: those differences are"
            " not tested, and none of them is starred."
        )
    for sign, found in (("above", above), ("below", below)):
        if not found:
            lines.append(
                f"**No objective is significantly {sign} SFT anywhere on this map** (after the correction)."
            )
            continue
        by_method = defaultdict(list)
        for point, method, role in found:
            by_method[method].append(
                f"{names[point[0]]}, {condition(point)}, {dict(ROLES)[role]} ({tests.text((point, method, role)).split(' ±')[0]})"
            )
        parts = [f"{_label(cells, m)} at {len(where)}: {'; '.join(where)}" for m, where in by_method.items()]
        lines.append(f"Significantly {sign} SFT after the correction: " + " — ".join(parts) + ".")
    table = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1), *rows]
    return lines, [
        "Points where the objective is above SFT, of the points it has, and how many differences are"
        " discoveries (`*`), by kind of demonstrations:",
        "",
        *table,
    ]


def _analysis(cells, names, tests: Comparisons) -> list[str]:
    lines = [
        "| start | demonstrations | objective | split | difference | Welch p | BH q |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for key in tests.pairs:
        point, method, role = key
        p, q = tests.p[key], tests.q[key]
        row = [
            names[point[0]],
            condition(point),
            _label(cells, method),
            dict(ROLES)[role],
            tests.text(key),
            _p_text(p),
            _p_text(q),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _p_text(value: float | None) -> str:
    if value is None:
        return MISSING
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _figures(name, task, cells, others, points, starts, base_of, names):
    """Objective − SFT against the start's own in-domain score (the task's own style, no noise),
    and against the noise rate, one line per objective and start."""
    figures = []
    clean = [p for p in points if condition(p) == OWN]
    xs = {p: own_score(base_of[p[0]], "test") for p in clean}
    if len(clean) >= 2 and all(x is not None for x in xs.values()):
        series = _series(cells, others, clean, {p: 100 * x.value for p, x in xs.items()}, lambda m, p: m)
        figures.append(_figure(name, task, series, "competence", "the start's own in-domain score (%)"))
    noisy = [p for p in points if not p[2]]
    if len({p[1] for p in noisy}) >= 2:
        series = _series(cells, others, noisy, {p: p[1] for p in noisy}, lambda m, p: (m, p[0]), names)
        figures.append(
            _figure(name, task, series, "noise", "--train-noise (fraction of rows with a wrong answer)")
        )
    return figures


def _series(cells, others, points, xs, group, names=None):
    """Per role, ``[(label, [(x, difference, stderr)])]``: one line per objective (and start)."""
    panels = []
    for role, title in ROLES:
        lines: dict[Any, list] = defaultdict(list)
        for method in others:
            for p in points:
                if (pair := _difference(cells, method, p, role)) is not None:
                    ours, sft = pair
                    lines[group(method, p)].append(
                        (xs[p], ours.value - sft.value, math.hypot(ours.stderr, sft.stderr))
                    )
        series = []
        for key, values in lines.items():
            method, start = key if isinstance(key, tuple) else (key, None)
            label = _label(cells, method) + (f", {names[start].strip('`')}" if start is not None else "")
            series.append((label, sorted(values)))
        if series:
            panels.append((f"{title}: objective − SFT", series))
    return panels


def _figure(name, task, panels, suffix, xlabel):
    from harness.report import plots  # import cost: matplotlib, only when a figure is drawn

    title = f"{task}: each objective minus SFT against {suffix}"
    draw = partial(plots.accuracy_panels, panels, xlabel, title, ylabel="difference (percentage points)")
    return suffix, f"objective minus SFT against {suffix}", f"plots/{name}-{suffix}.png", draw
