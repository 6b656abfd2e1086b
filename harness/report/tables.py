"""The pieces every leaderboard page shares: a record's row label and order, its scores over seeds
as text, differences with their significance, the groups of records that may be averaged together,
and the provenance and data notes under a table.

The domain pages (:mod:`harness.report.domain`), the ablation and continuum pages and the index all
build their tables from these; each is a pure function of the records.

>>> score_text(None), differences_text([(None, None)])
('–', ['–'])
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness import objectives
from harness.config import METHODS
from harness.environment import of_record
from harness.identity import seed_of, variant_settings
from harness.objectives import BASE
from harness.results import offline
from harness.stats import (
    Estimate,
    Pooled,
    discoveries,
    mean_of_independent,
    over_seeds,
    pooled_seed_variance,
    welch_p_value,
)

Record = dict[str, Any]


Plot = tuple[str, Callable[[], bytes]]  # path under the leaderboard folder, and what draws it

MISSING = "–"


SIGNIFICANCE_NOTE = (
    "Each score is the mean over the configuration's seeds ± a standard error that adds the evaluation"
    " variance (binomial, over the split's examples) and the seed-to-seed variance divided by the"
    " number of seeds. A difference marked `*` is a discovery at a 5% false-discovery rate:"
    " two-sided Welch t-tests over the seeds (Welch–Satterthwaite degrees of freedom, the evaluation"
    " variance added as known), Benjamini–Hochberg over the differences of the table. With one seed"
    " the training variance is unmeasured, and no difference is marked."
)


UNMEASURED_NOTE = (
    "Training variance is unmeasured here (one seed): a difference may be seed noise, so none is"
    " marked significant. Run with `--seeds 0 1 2` to measure it."
)


@dataclass
class Page:
    text: str
    plots: list[Plot] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # what it found, in sentences the index repeats


def summary_score(record: Record, role: str) -> tuple[float, float] | None:
    """``(mean, stderr)`` over the record's splits of ``role`` ("test": in-domain, "ood"), or None.
    The splits are different examples, so the stderr of the mean is √(Σ se²) / k."""
    scores = [s for s in record["scores"].values() if s["role"] == role]
    if not scores:
        return None
    return mean_of_independent([(s["value"], s["stderr"]) for s in scores])


def replicate_score(
    replicates: list[Record], role: str | None = None, split: str | None = None, pooled: Pooled | None = None
):
    """The :class:`harness.stats.Estimate` over the seeds of one configuration, of one ``split`` or
    of the mean over the splits of ``role``; None unless every replicate has it. ``pooled``: the
    method's seed variance pooled over a page's configurations (:func:`pooled_variances`), the
    least seed variance the estimate takes."""
    scores = []
    for record in replicates:
        if split is not None:
            score = record["scores"].get(split)
            scores.append(None if score is None else (score["value"], score["stderr"]))
        else:
            scores.append(summary_score(record, role))
    if not scores or None in scores:
        return None
    return over_seeds(scores, pooled)


def pooled_variances(configurations: Iterable[list[Record]], role: str) -> Pooled:
    """One method's seed variance of its ``role`` score, pooled over a page's ``configurations``
    (each the records of its seeds): :func:`harness.stats.pooled_seed_variance`."""
    groups = []
    for replicates in configurations:
        values = [score[0] for record in replicates if (score := summary_score(record, role)) is not None]
        groups.append(values)
    return pooled_seed_variance(groups)


def differences_text(pairs: list[tuple[Estimate | None, Estimate | None]]) -> list[str]:
    """Each ``a - b`` of a family of differences (one table's) in percentage points, starred when it
    is a discovery at the false-discovery rate :data:`harness.stats.FDR`: Welch p-values over the
    seeds, Benjamini-Hochberg over the family's tested differences (one seed: not tested).

    >>> from harness.stats import over_seeds
    >>> sft = over_seeds([(0.60, 0.01), (0.61, 0.01), (0.59, 0.01)])
    >>> differences_text([(over_seeds([(0.70, 0.01), (0.71, 0.01), (0.69, 0.01)]), sft), (None, sft)])
    ['+10.0*', '–']
    """
    tested = [welch_p_value(a, b) if a is not None and b is not None else None for a, b in pairs]
    return [
        MISSING if a is None or b is None else signed_difference(a.value, b.value) + ("*" if found else "")
        for (a, b), found in zip(pairs, discoveries(tested))
    ]


def score_text(score: Estimate | None) -> str:
    return MISSING if score is None else f"{100 * score.value:.1f} ± {100 * score.stderr:.1f}"


def seeds_text(replicates: list[Record]) -> str:
    """How many seeds a row averages; ``–`` for the base, which trains nothing."""
    return MISSING if replicates[0]["method"] == BASE else str(len(replicates))


def comparable_groups(records: list[Record]) -> list[tuple[str, list[Record]]]:
    """The records split into groups that may be averaged and compared: one environment
    (:func:`harness.environment.of_record`) and one way of evaluating (the record's ``evaluation``).
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
        key = {**of_record(record), **{f"evaluation {k}": v for k, v in evaluation.items()}}
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


def env_suffix(label: str) -> str:
    """A short file-name tag of a group label (the tables of one configuration's several
    environments or evaluations need figures of their own)."""
    return "" if not label else "-" + hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]


def replicate_label(record: Record, replicates: list[Record]) -> str:
    """``SFT``, or ``SFT seed 1`` when its configuration has several seeds."""
    label = row_label(record)
    seed = seed_of(record)
    return label if len(replicates) < 2 else f"{label} seed {MISSING if seed is None else seed}"


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


def row_order(key: str, method: str) -> tuple[int, str, bool, str]:
    """In the order of METHODS (base, SFT, DFT, then the other objectives; one added later by name),
    each objective's variants right after it, by name."""
    return (METHODS.index(method) if method in METHODS else len(METHODS), method, key != method, key)


def row_label(record: Record) -> str:
    """``DFT``, or ``DFT (floor 0.1, alpha 0.5)`` for a follow-up variant; the baseline trained in the
    offline setting is ``RFT``."""
    settings = variant_settings(record["method"], record["hparams"])
    label = objectives.label(record["method"], offline(record))
    return f"{label} ({', '.join(f'{short} {value:g}' for short, value in settings)})" if settings else label


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
        if record["method"] == BASE:
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


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def signed_difference(dft: float | None, sft: float | None) -> str:
    """``dft - sft`` in percentage points with its sign (``+0.0`` for a rounding-level loss)."""
    if dft is None or sft is None:
        return MISSING
    text = f"{100 * (dft - sft):+.1f}"
    return "+0.0" if text == "-0.0" else text  # a rounding-level loss is not a loss
