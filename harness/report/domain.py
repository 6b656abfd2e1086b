"""Domain pages (``leaderboards/<domain>.md``) and the table pieces the other pages share.

One page per domain, one table per task, backbone and configuration: the untouched base model, SFT,
DFT and every other objective trained, on every evaluation split, each the mean over the
configuration's seeds with a standard error that holds both the evaluation and the seed-to-seed
variance (:func:`harness.stats.over_seeds`), the mean over the out-of-distribution splits and, for
each objective trained beside SFT (DFT, its variants, q-family, ...), its difference from SFT in
percentage points with the significant ones starred (:func:`harness.stats.significant_difference`;
none while the training variance is unmeasured). Records of one configuration made with different
package versions, or evaluated differently, are not averaged together: each group gets a table of
its own, labelled (:func:`comparable_groups`). A DFT follow-up variant of the same configuration is a row of its
own, ``DFT (floor 0.1)``, with its own difference row. Figures (:mod:`harness.report.plots`):
token-probability histograms and accuracy-versus-step curves under the tables whose records hold
them. Like every page, a pure function of the records.

>>> domain_pages([], "results")
{}
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from harness import objectives
from harness.config import METHODS, REPLICATE_KEYS
from harness.errors import RecordError
from harness.report.paper import paper_lines
from harness.results import (
    OBJECTIVE_KEYS,
    backbone_slug,
    config_id,
    distinctive,
    environment,
    seed_of,
    variant,
    variant_settings,
)
from harness.stats import Estimate, mean_of_independent, over_seeds, significant_difference

MISSING = "–"
SIGNIFICANCE_NOTE = (
    "Each score is the mean over the configuration's seeds ± a standard error that adds the evaluation"
    " variance (binomial, over the split's examples) and the seed-to-seed variance divided by the"
    " number of seeds. A difference marked `*` is significant in a two-sided Welch t-test at 5% over"
    " the seeds (Welch–Satterthwaite degrees of freedom, the evaluation variance added as known)."
    " With one seed the training variance is unmeasured, and no difference is marked."
)
UNMEASURED_NOTE = (
    "Training variance is unmeasured here (one seed): a difference may be seed noise, so none is"
    " marked significant. Run with `--seeds 0 1 2` to measure it."
)

Record = dict[str, Any]
Plot = tuple[str, Callable[[], bytes]]  # path under the leaderboard folder, and what draws it


@dataclass
class Page:
    text: str
    plots: list[Plot] = field(default_factory=list)


def summary_score(record: Record, role: str) -> tuple[float, float] | None:
    """``(mean, stderr)`` over the record's splits of ``role`` ("test": in-domain, "ood"), or None.
    The splits are different examples, so the stderr of the mean is √(Σ se²) / k."""
    scores = [s for s in record["scores"].values() if s["role"] == role]
    if not scores:
        return None
    return mean_of_independent([(s["value"], s["stderr"]) for s in scores])


def replicate_score(replicates: list[Record], role: str | None = None, split: str | None = None):
    """The :class:`harness.stats.Estimate` over the seeds of one configuration, of one ``split`` or
    of the mean over the splits of ``role``; None unless every replicate has it."""
    scores = []
    for record in replicates:
        if split is not None:
            score = record["scores"].get(split)
            scores.append(None if score is None else (score["value"], score["stderr"]))
        else:
            scores.append(summary_score(record, role))
    if not scores or None in scores:
        return None
    return over_seeds(scores)


def difference_text(a: Estimate | None, b: Estimate | None) -> str:
    """``a - b`` in percentage points, starred when significant over the seeds."""
    if a is None or b is None:
        return MISSING
    return _signed(a.value, b.value) + ("*" if significant_difference(a, b) else "")


def score_text(score: Estimate | None) -> str:
    return MISSING if score is None else f"{100 * score.value:.1f} ± {100 * score.stderr:.1f}"


def seeds_text(replicates: list[Record]) -> str:
    """How many seeds a row averages; ``–`` for the base, which trains nothing."""
    return MISSING if replicates[0]["method"] == "base" else str(len(replicates))


def comparable_groups(records: list[Record]) -> list[tuple[str, list[Record]]]:
    """The records split into groups that may be averaged and compared: one environment
    (:func:`harness.results.environment`) and one way of evaluating (the record's ``evaluation``).
    Largest group first; each labelled with what sets it apart (``transformers 5.24.0``,
    ``evaluation limit 50``), one group with an empty label when all agree.

    >>> def made_with(version, limit=200):
    ...     return {"provenance": {"python": "3.11", "packages": {"transformers": version}},
    ...             "evaluation": {"limit": limit}}
    >>> records = [made_with("5.23.0"), made_with("5.24.0"), made_with("5.24.0"), made_with("5.24.0", 50)]
    >>> [(label, len(group)) for label, group in comparable_groups(records)]
    [('transformers 5.24.0, evaluation limit 200', 2), ('transformers 5.23.0, evaluation limit 200', 1), ('transformers 5.24.0, evaluation limit 50', 1)]
    """
    groups: dict[str, list[Record]] = defaultdict(list)
    keys: dict[str, dict[str, Any]] = {}
    for record in records:
        evaluation = record.get("evaluation") or {}
        key = {**environment(record), **{f"evaluation {k}": v for k, v in evaluation.items()}}
        text = json.dumps(key, sort_keys=True, default=str)
        keys[text] = key
        groups[text].append(record)
    if len(groups) == 1:
        return [("", records)]
    names = dict.fromkeys(name for key in keys.values() for name in key)
    differing = [
        name for name in names if len({json.dumps(k.get(name), default=str) for k in keys.values()}) > 1
    ]
    ordered = sorted(groups, key=lambda text: (-len(groups[text]), text))
    return [
        (", ".join(f"{name} {_value_text(keys[text].get(name))}" for name in differing), groups[text])
        for text in ordered
    ]


def _value_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def domain_pages(records: list[Record], source: str) -> dict[str, Page]:
    by_domain: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_domain[record["domain"]].append(record)
    source = source.rstrip("/") or "/"
    return {domain: _page(domain, by_domain[domain], source) for domain in sorted(by_domain)}


Rows = dict[str, list[Record]]  # variant -> its replicates (one record per seed), base first


def _page(domain: str, records: list[Record], source: str) -> Page:
    lines = [
        f"# {domain} leaderboard: SFT vs DFT and the other objectives",
        "",
        f"Generated by `python -m harness.leaderboard` from {len(records)} records in `{source}/`"
        " - do not edit by hand.",
        "",
        "Scores are percentages, `value ± stderr`. **Bold** is the best row in each column. OOD mean is"
        " the unweighted mean of the OOD splits; each objective − SFT (DFT − SFT, ...) is in percentage"
        " points. " + SIGNIFICANCE_NOTE,
    ]
    plots: list[Plot] = []
    for task, backbone, cid, env_label, rows in _tables(records):
        lines += ["", *_table(task, backbone, cid, env_label, rows)]
        stem = f"{task}-{backbone_slug(backbone)}-{cid or 'base'}" + _env_suffix(env_label)
        figures = table_plots(stem, task, rows)
        lines += [line for _, alt, path, _ in figures for line in ("", f"![{alt}]({path})")]
        plots += [(path, draw) for _, _, path, draw in figures]
    return Page("\n".join(lines) + "\n", plots)


def _env_suffix(label: str) -> str:
    """A short file-name tag of a group label (the tables of one configuration's several
    environments or evaluations need figures of their own)."""
    return "" if not label else "-" + hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]


def replicate_label(record: Record, replicates: list[Record]) -> str:
    """``SFT``, or ``SFT seed 1`` when its configuration has several seeds."""
    label = row_label(record)
    seed = seed_of(record)
    return label if len(replicates) < 2 else f"{label} seed {MISSING if seed is None else seed}"


def table_plots(stem: str, title: str, rows: Rows) -> list[tuple[str, str, str, Callable]]:
    """The figures of one table: accuracy against step when its runs kept curves (one line per
    seed), and the token-probability histograms when they kept those (the first seed's). ``(kind,
    alt text, path, draw)`` each."""
    from harness.report import plots  # import cost: matplotlib, only when a figure is drawn

    figures = []
    curves = {replicate_label(r, reps): r["curve"] for reps in rows.values() for r in reps if r.get("curve")}
    if curves:
        panels = step_panels(
            list(curves.items()), (("test", "in-domain (test splits)"), ("ood", "out-of-domain mean"))
        )
        title_text = f"{title}: accuracy vs step"
        draw = partial(plots.accuracy_panels, panels, "training step", title_text)
        figures.append(("steps", "accuracy vs training step", f"plots/{stem}-steps.png", draw))
    histograms = []
    for reps in rows.values():
        first = next((r for r in reps if r.get("token_probs")), None)
        if first is not None:
            histograms.append((replicate_label(first, reps), first["token_probs"]))
    if histograms:
        draw = partial(plots.token_probabilities, histograms, f"{title}: training-token probabilities")
        figures.append(("tokens", "probabilities of the training targets", f"plots/{stem}-tokens.png", draw))
    return figures


def step_panels(curves: list[tuple[str, list[dict[str, Any]]]], roles) -> list[tuple[str, list]]:
    """Panels of accuracy against step for :func:`harness.report.plots.accuracy_panels`: one per
    ``(role, title)`` of ``roles`` that any curve has, each with a series per ``(label, curve)``."""
    panels = [
        (title, [(label, curve_points(curve, role)) for label, curve in curves]) for role, title in roles
    ]
    return [(title, series) for title, series in panels if any(points for _, points in series)]


def curve_points(curve: list[dict[str, Any]], role: str) -> list[tuple[float, float, float]]:
    """``[(step, mean, stderr)]``: at each step, the mean over the curve's splits of ``role``
    (steps where a split is missing are left out, so every point averages the same splits)."""
    by_step: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for point in curve:
        if point.get("role", "test") == role:
            by_step[point["step"]].append(point)
    if not by_step:
        return []
    width = max(len(points) for points in by_step.values())
    out = []
    for step, points in sorted(by_step.items()):
        if len(points) == width:
            k = len(points)
            mean = sum(p["value"] for p in points) / k
            out.append((float(step), mean, math.sqrt(sum(p["stderr"] ** 2 for p in points)) / k))
    return out


def _tables(records: list[Record]) -> list[tuple[str, str, str | None, str, Rows]]:
    """Group into tables ``(task, backbone, config id, environment label, rows)``: base records join
    every configuration of their task and backbone; the seeds of a variant are its replicates; a
    configuration whose records come from several environments gets one table per environment."""
    bases: dict[tuple[str, str], Record] = {}
    trained: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        task, backbone = record["task"], record["backbone"]
        if record["method"] != "base":
            trained[task, backbone, config_id(record["hparams"])].append(record)
        elif (task, backbone) in bases:  # write_record cannot produce this: the page would be ambiguous
            raise RecordError(f"two base records for task {task!r}, backbone {backbone!r}")
        else:
            bases[task, backbone] = record
    tables = []  # (task, backbone, config id, group rank, group label, rows)
    for (task, backbone, cid), runs in trained.items():
        base = {"base": [bases[task, backbone]]} if (task, backbone) in bases else {}
        for rank, (label, group) in enumerate(comparable_groups(runs)):
            tables.append((task, backbone, cid, rank, label, base | _replicates(task, backbone, group)))
    have_trained = {(task, backbone) for task, backbone, _ in trained}
    tables += [
        (t, b, None, 0, "", {"base": [record]})
        for (t, b), record in bases.items()
        if (t, b) not in have_trained
    ]
    ordered = sorted(tables, key=lambda table: (table[0], table[1], table[2] or "", table[3]))
    return [
        (
            t,
            b,
            cid,
            label,
            {k: rows[k] for k in sorted(rows, key=lambda k: row_order(k, rows[k][0]["method"]))},
        )
        for t, b, cid, _, label, rows in ordered
    ]


def _replicates(task: str, backbone: str, runs: list[Record]) -> Rows:
    """``{variant: records by seed}``; two records of one variant and seed make the page ambiguous."""
    rows: Rows = defaultdict(list)
    for record in sorted(runs, key=lambda r: (seed_of(r) is not None, seed_of(r) or 0)):
        key = variant(record["method"], record["hparams"])
        if any(seed_of(other) == seed_of(record) for other in rows[key]):
            raise RecordError(
                f"two {key} records for task {task!r}, backbone {backbone!r}, same config and seed "
                f"{seed_of(record)}"
            )
        rows[key].append(record)
    return dict(rows)


def row_order(key: str, method: str) -> tuple[int, str, bool, str]:
    """In the order of METHODS (base, SFT, DFT, then the other objectives; one added later by name),
    each objective's variants right after it, by name."""
    return (METHODS.index(method) if method in METHODS else len(METHODS), method, key != method, key)


def row_label(record: Record) -> str:
    """``DFT``, or ``DFT (floor 0.1, alpha 0.5)`` for a follow-up variant."""
    settings = variant_settings(record["method"], record["hparams"])
    label = objectives.label(record["method"])
    return f"{label} ({', '.join(f'{short} {value:g}' for short, value in settings)})" if settings else label


def _table(task: str, backbone: str, cid: str | None, env_label: str, rows: Rows) -> list[str]:
    splits: dict[str, str] = {}  # name -> role, in the order the records list them
    for method, replicates in rows.items():
        for record in replicates:
            for name, score in record["scores"].items():
                if splits.setdefault(name, score["role"]) != score["role"]:
                    raise RecordError(
                        f"split {name!r} of {task!r} is {splits[name]} in one record, {score['role']} in {method}"
                    )
    ood = [name for name, role in splits.items() if role == "ood"]
    titles = {
        name: score["title"]
        for reps in rows.values()
        for record in reps
        for name, score in record["scores"].items()
        if "title" in score
    }
    # Trained on one task, scored only on benchmarks (NuminaMath-CoT on MATH500, ...): the columns
    # read like the paper's table, the benchmarks' names and their average.
    paper_style = bool(ood) and all(role == "ood" for role in splits.values()) and set(titles) == set(splits)

    # scored[method][column]: the estimates that bolding and differences use; None when absent.
    headers = [
        _cell_text(titles[name]) if paper_style else f"{_cell_text(name)} ({role})"
        for name, role in splits.items()
    ]
    scored: dict[str, list[Estimate | None]] = {}
    for method, replicates in rows.items():
        scored[method] = [replicate_score(replicates, split=name) for name in splits]
        if ood:  # a mean over fewer splits than the other rows would not be comparable: leave it out
            complete = all(n in r["scores"] for r in replicates for n in ood)
            scored[method].append(replicate_score(replicates, "ood") if complete else None)
    if ood:
        headers.append("Avg." if paper_style else "OOD mean")
    cells = {method: [score_text(score) for score in row] for method, row in scored.items()}

    for column in range(len(headers)):
        # Compared as shown: two cells that read the same are both best (or neither).
        shown = {
            method: round(100 * row[column].value, 1)
            for method, row in scored.items()
            if row[column] is not None
        }
        if len(shown) > 1:  # a lone row is not "best" of anything
            best = max(shown.values())
            for method, value in shown.items():
                if value == best:
                    cells[method][column] = f"**{cells[method][column]}**"

    heading = f"## `{task}` · `{backbone}` · " + (f"config `{cid}`" if cid else "base model only")
    if any(isinstance(r["data"].get("selfgen"), dict) for reps in rows.values() for r in reps):
        heading += " · offline setting (trained on the backbone's own graded answers)"
    lines = [heading + (f" · {env_label}" if env_label else ""), ""]
    if env_label:
        lines += [
            "⚠ This configuration's records come from several environments or evaluations; the table"
            f" holds those with {env_label}, not averaged with the others.",
            "",
        ]
    lines += [*_settings(rows), "| model | seeds | " + " | ".join(headers) + " |"]
    lines.append("|---|---:|" + "---:|" * len(headers))
    lines += [
        f"| {row_label(reps[0])} | {seeds_text(reps)} | " + " | ".join(cells[key]) + " |"
        for key, reps in rows.items()
    ]
    # Each trained objective against SFT, under the same configuration (DFT first, as METHODS orders).
    differences = [
        key for key, reps in rows.items() if "sft" in scored and reps[0]["method"] not in ("base", "sft")
    ]
    for key in differences:
        diffs = [difference_text(d, s) for d, s in zip(scored[key], scored["sft"])]
        lines.append(f"| {row_label(rows[key][0])} − SFT | | " + " | ".join(diffs) + " |")
    unmeasured = any(len(rows[key]) < 2 for key in ["sft", *differences]) if differences else False
    # Each method's estimates under the column names a paper's table uses: the benchmark's title
    # (else the split's name), and the mean over the OOD splits ("Avg." in a paper-style table).
    names = [titles.get(name, name) if paper_style else name for name in splits] + (
        [headers[-1]] if ood else []
    )
    measured = {key: dict(zip(names, scored[key])) for key, reps in rows.items() if key == reps[0]["method"]}
    return [
        *lines,
        *paper_lines(task, backbone, rows, measured),
        *_pass_at_table(rows, list(splits)),
        *(["", UNMEASURED_NOTE] if unmeasured else []),
        "",
        _eval_note(rows, list(splits)),
        "",
        provenance_note(backbone, [r for reps in rows.values() for r in reps]),
    ]


def _pass_at_table(rows: Rows, splits: list[str]) -> list[str]:
    """pass@k for k > 1 (pass@1 is the value above), the mean over the seeds, when sampled runs
    recorded it."""
    records = [r for reps in rows.values() for r in reps]
    ks = sorted(
        {int(k) for r in records for s in r["scores"].values() for k in s.get("pass_at", {}) if k != "1"}
    )
    if not ks:
        return []
    columns = [(name, k) for k in ks for name in splits]
    lines = ["", "| model | " + " | ".join(f"{_cell_text(n)} pass@{k}" for n, k in columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    for reps in rows.values():
        cells = []
        for name, k in columns:
            values = [r["scores"].get(name, {}).get("pass_at", {}).get(str(k)) for r in reps]
            cells.append(MISSING if None in values else f"{100 * sum(values) / len(values):.1f}")
        lines.append(f"| {row_label(reps[0])} | " + " | ".join(cells) + " |")
    return lines


def _settings(rows: Rows) -> list[str]:
    """What the table's runs share: hyperparameters (but the seed, in the provenance) and training
    data (the DFT variant is in the row label)."""
    trained = {key: reps for key, reps in rows.items() if key != "base"}
    if not trained:
        return []
    first = next(iter(trained.values()))[0]["hparams"]
    shared = {
        key: value for key, value in distinctive(first).items() if key not in OBJECTIVE_KEYS | REPLICATE_KEYS
    }
    seeds = sorted({seed_of(r) for reps in trained.values() for r in reps}, key=lambda s: (s is None, s or 0))
    seeds_named = ", ".join(MISSING if seed is None else str(seed) for seed in seeds)
    lines = [
        f"Hyperparameters shared by the trained rows: {pairs_text(shared)}; seeds {seeds_named}.",
        "",
    ]
    # The selfgen origin is said in words in the provenance note (and the heading), not as a dict.
    data = {
        key: {k: v for k, v in reps[0]["data"].items() if k not in ("trained_tokens_per_s", "selfgen")}
        for key, reps in trained.items()
        if reps[0]["data"]
    }
    if data and all(d == next(iter(data.values())) for d in data.values()) and len(data) == len(trained):
        lines += [f"Training data: {pairs_text(next(iter(data.values())))}.", ""]
    elif data:
        lines += [
            "Training data: "
            + "; ".join(f"{row_label(rows[k][0])} {pairs_text(d)}" for k, d in data.items())
            + ".",
            "",
        ]
    return lines


def _eval_note(rows: Rows, splits: list[str]) -> str:
    """``n = 200 per split, 1 sample per example, greedy.``, or per split where the records differ."""
    records = [r for reps in rows.values() for r in reps]

    def per_split(key: str) -> tuple[list[Any], str]:
        seen = {
            name: sorted({record["scores"][name][key] for record in records if name in record["scores"]})
            for name in splits
        }
        distinct = sorted({value for values in seen.values() for value in values})
        spelled = ", ".join(f"{name}: {'/'.join(map(str, values))}" for name, values in seen.items())
        return distinct, spelled

    parts = []
    ns, spelled = per_split("n")
    parts.append(f"n = {ns[0]} per split" if len(ns) == 1 else f"n = {spelled}")
    counts, spelled = per_split("samples_per_example")
    if len(counts) == 1:
        parts.append(f"{counts[0]} sample{'s' if counts[0] != 1 else ''} per example")
    else:
        parts.append(f"samples per example: {spelled}")
    decodings = sorted(
        {
            score["decoding"]
            for record in records
            for score in record["scores"].values()
            if "decoding" in score
        }
    )
    if decodings:
        parts.append(" / ".join(decodings))
    templates = sorted({r.get("evaluation", {}).get("prompt_template", "chat") for r in records})
    if templates != ["chat"]:
        parts.append("prompt template " + " / ".join(templates))
    return ", ".join(parts) + "."


def provenance_note(backbone: str, records: Iterable[Record]) -> str:
    """``Provenance - backbone `x`; SFT: commit `abc`, 2026-11-23, cpu, 3.1 min; ...``"""
    records = list(records)
    runs = [
        f"{row_label(record)}{_seed_text(record)}: {_origin(record)}, {_duration(record['wall_time_s'])}"
        for record in records
    ]
    return f"Provenance - backbone `{backbone}`, {_data_source(records)}; " + "; ".join(runs) + "."


def _seed_text(record: Record) -> str:
    seed = seed_of(record)
    return "" if seed is None else f" seed {seed}"


def grouped_provenance_note(backbone: str, records: Iterable[Record]) -> str:
    """The provenance of many runs (a grid), grouped by commit, date and device:
    ``Provenance - backbone `x`; 4 runs: commit `abc`, 2026-11-23, cpu, 10 s to 12 s each (45 s in all).``"""
    records = list(records)
    groups: dict[str, list[float]] = defaultdict(list)
    for record in records:
        groups[_origin(record)].append(record["wall_time_s"])
    parts = []
    for origin, walls in sorted(groups.items()):
        low, high = _duration(min(walls)), _duration(max(walls))
        each = low if low == high else f"{low} to {high}"
        count = f"{len(walls)} run{'s' if len(walls) != 1 else ''}"
        parts.append(f"{count}: {origin}, {each} each ({_duration(sum(walls))} in all)")
    return f"Provenance - backbone `{backbone}`, {_data_source(records)}; " + "; ".join(parts) + "."


def _data_source(records: list[Record]) -> str:
    """``trained on the `math-words` train split (2000 examples)``, or ``evaluation only``."""
    sources = set()
    for record in records:
        hparams = record["hparams"]
        if record["method"] == "base":
            continue
        where = (
            f"`{hparams['train_data']}`"
            if hparams.get("train_data")
            else f"the `{record['task']}` train split"
        )
        offset = hparams.get("train_offset") or 0
        if hparams.get("train_limit"):
            first, last = offset + 1, offset + hparams["train_limit"]
            where += f" (rows {first}-{last})" if offset else f" (first {hparams['train_limit']} rows)"
        elif offset:
            where += f" (past the first {offset} rows)"
        if hparams.get("train_noise"):
            where += f", {hparams['train_noise']:g} of them with a wrong answer (--train-noise)"
        made = record["data"].get("selfgen")
        if isinstance(made, dict):  # the offline setting's data: say whose answers they are
            where += (
                f" (self-generated: {made.get('model')}'s {made.get('num_samples')} answers at temperature "
                f"{made.get('temperature')} to {made.get('questions')} `{made.get('task')}` training questions, "
                f"{made.get('correct')} graded correct, {made.get('pairs')} right/wrong pairs)"
            )
        if "train_examples" in record["data"] and not isinstance(made, dict):  # rows and pairs: listed above
            where += f", {record['data']['train_examples']} examples"
        sources.add(where)
    return "trained on " + " / ".join(sorted(sources)) if sources else "evaluation only"


def _origin(record: Record) -> str:
    """``commit `abcdef0123` (dirty), 2026-11-23, cpu``"""
    origin = record["provenance"]
    commit = origin.get("commit")
    if commit:
        commit_text = f"commit `{commit[:10]}`" + (" (dirty)" if origin.get("dirty") else "")
    else:
        commit_text = "commit unknown"
    date = str(origin.get("date") or "date unknown")[:10]
    lock = origin.get("lock")
    if lock and lock.get("differs"):
        commit_text += (
            " (not the locked environment: "
            + ", ".join(f"{name} {version}" for name, version in sorted(lock["differs"].items()))
            + ")"
        )
    return f"{commit_text}, {date}, {origin.get('device') or 'device unknown'}{_host_text(origin)}"


def _host_text(origin: dict[str, Any]) -> str:
    """How a record computed, after its device: ``, AMD EPYC, pinned AVX2`` on a CPU, the driver on
    a GPU; nothing for a record made before hosts were recorded.

    >>> _host_text({"host": {"cpu": "AMD EPYC"}, "numerics": {"mode": "pinned", "device": "cpu",
    ...             "capability": "AVX2"}})
    ', AMD EPYC, pinned AVX2'
    """
    machine, numbers = origin.get("host"), origin.get("numerics")
    if not isinstance(numbers, dict) or not numbers:
        return ""
    machine = machine if isinstance(machine, dict) else {}
    if numbers.get("device") == "cuda":
        driver = (machine.get("gpu") or {}).get("driver")
        return f", driver {driver}" if driver else ""
    return f", {machine.get('cpu') or 'CPU unknown'}, {numbers.get('mode')} {numbers.get('capability')}"


def pairs_text(mapping: dict[str, Any]) -> str:
    return ", ".join(f"`{key}={value}`" for key, value in sorted(mapping.items()))


def _signed(dft: float | None, sft: float | None) -> str:
    if dft is None or sft is None:
        return MISSING
    text = f"{100 * (dft - sft):+.1f}"
    return "+0.0" if text == "-0.0" else text  # a rounding-level loss is not a loss


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe would split the markdown cell
