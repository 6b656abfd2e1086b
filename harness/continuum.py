"""Where on the model-capability continuum each objective beats SFT: one command, one map.

::

    python -m harness.continuum --task math-words --methods sft dft --train-limit 500 \\
        --start-scores 50 71 --start-tolerance 3 --noise 0 0.2 0.4 --off-styles numbered --seeds 0 1 2

The map's rows are **starting points by competence**: the backbone as it is, then for each target
of ``--start-scores`` (the start's own in-domain score, in percent) the backbone after SFT on the
**warm-up pool** (the training rows after the mapped runs' ``--train-limit``: rows they never see)
for as many steps as the target needs: the lengths of ``--warmup-steps`` are tried in order (each a
warm-up of its own, trained once and then reused, its in-domain score measured with the map's
evaluation settings) and the first within ``--start-tolerance`` points of the target is the start;
one that overshoots by more stops the search at the closest tried. A target no length reaches
keeps the closest start, and the page says by how much it missed. Each start's base record keeps
its own in-domain and OOD scores, its two strengths (:mod:`harness.token_probs`: the mean
probability of every training target, and of the tokens that decide the grade) and, in ``start``,
its target and the search that found it.

From every start, every method of ``--methods`` trains at every ``--noise`` rate (a seeded fraction
of rows gets another row's final answer) and, at no noise, on each of ``--off-styles`` (the same
correct answers written in another of the task's styles: the paper's situation, demonstrations
that are not the backbone's own). Each point is an ordinary experiment (records reused when
finished). The map is a page of the leaderboard folder, ``continuum-<task>-<map id>.md``
(:mod:`harness.report.continuum`), rendered from the records alone.

>>> plan(parse_continuum(["--methods", "sft", "dft", "--train-limit", "64", "--noise", "0", "0.25",
...                       "--off-styles", "numbered"]))  # doctest: +NORMALIZE_WHITESPACE
[(None, 0.0, None, ['base', 'sft', 'dft']), (None, 0.25, None, ['sft', 'dft']),
 (None, 0.0, 'numbered', ['sft', 'dft'])]
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import results
from harness.config import (
    RUN,
    Parser,
    TrainConfig,
    add_arguments,
    at_least,
    below_one,
    check_fields,
    config_from,
    experiment_parser,
    objective_defaults,
    positive,
    preset_of,
    setting,
)
from harness.errors import ConfigError, command
from harness.files import atomic_write_text, read_json
from harness.identity import config_id
from harness.objectives import BASE, BASELINE
from harness.stats import mean_of_independent

if TYPE_CHECKING:
    from harness.resolve import Experiment

PROBE_FILE = "probe.json"  # a warm-up's own in-domain score, beside its train_summary.json
# The warm-up lengths tried for a target, in order: about 1.5 times the last each time, so a start
# lands within a few points of its target without a probe at every step count.
WARMUP_STEPS = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]


def percent(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
        return f"must be a percentage in (0, 100], got {value!r}"
    return None


@dataclass
class ContinuumConfig:
    """``python -m harness.continuum``: starting points by competence, and from each the methods at
    several demonstration-noise rates and in other solution styles (:mod:`harness.report.continuum`
    maps them)."""

    start_scores: list[float] = setting(
        [],
        "the competence ladder: for each target (a starting point's own in-domain score, in "
        "percent), the backbone after SFT on the warm-up pool (the training rows after the mapped "
        "runs' --train-limit) for as many steps as the target needs; the backbone as it is is "
        "always the first start",
        role=RUN,
        check=percent,
    )
    start_tolerance: float = setting(
        5.0,
        "how many points a start's own in-domain score may be from its target: the first warm-up "
        "length within it is the start (the page says so of a start that misses by more)",
        role=RUN,
        check=positive,
    )
    warmup_steps: list[int] = setting(
        WARMUP_STEPS,
        "the warm-up lengths (optimizer steps over the warm-up pool) tried for each target, in order",
        role=RUN,
        check=at_least(1),
    )
    noise: list[float] = setting(
        [0.0, 0.2, 0.4],
        "--train-noise rates every method trains at, from every start",
        role=RUN,
        check=below_one,
    )
    off_styles: list[str] = setting(
        [],
        "solution styles of the task other than its own that every method also trains on, from every "
        "start at no noise (off-style demonstrations: --train-style)",
        role=RUN,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class Continuum:
    """What ``python -m harness.continuum`` runs: the ladder, noise rates and styles, the experiment
    every point shares (its --model is the backbone) and the size of the warm-up pool."""

    study: ContinuumConfig
    experiment: Experiment
    pool_rows: int = 0


@dataclass
class Start:
    """One starting point: the backbone (``target`` None) or the warm-up chosen for a target."""

    model: str
    target: float | None = None
    steps: int | None = None
    score: float | None = None  # its own in-domain score (a fraction), as its probe measured it
    probes: list[dict[str, Any]] | None = None  # every length tried for this target: steps, in_domain

    def annotation(self, tolerance: float) -> dict[str, Any] | None:
        """What the start's base record keeps in ``start``: its target and how it was found."""
        if self.target is None:
            return None
        return {"target": self.target, "tolerance": tolerance, "steps": self.steps, "probes": self.probes}


def parser(preset: dict[str, Any], description: str = "") -> Parser:
    parser = Parser(prog="python -m harness.continuum", description=description)
    add_arguments(parser.add_argument_group("the map"), ContinuumConfig)
    return experiment_parser(preset, parser)


def parse_continuum(argv: list[str] | None = None, description: str = "") -> Continuum:
    """``python -m harness.continuum``'s command line, resolved and checked before any run: the
    experiment's flags, the targets (each above the backbone's own score where its record is known,
    none above the best SFT of the reference folder, a warm-up pool of at least one batch), the
    noise rates (every row has an answer to corrupt) and the styles (the task's own others); SFT
    must be trained: it is the baseline.

    >>> parse_continuum(["--start-scores", "50", "--methods", "sft", "dft", "--train-limit", "2000"])
    Traceback (most recent call last):
    ...
    harness.errors.ConfigError: --start-scores 50: the warm-up pool is the rows after --train-limit 2000, and task math-words split train has 2000 (none left)
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = preset_of(argv)
    args = vars(parser(preset, description).parse_args(argv))
    study = config_from(args, ContinuumConfig)
    # import cost: the task registry, the rows and the resolve step (torch), once the flags parse
    import tasks
    from harness.data.noise import with_noise
    from harness.data.rows import training_rows
    from harness.resolve import resolve_experiment

    experiment = resolve_experiment(args, preset)
    train, task = experiment.train, tasks.get(experiment.config.task)
    if BASELINE not in experiment.config.methods:
        raise ConfigError("--methods: a map compares each objective with SFT, so it must include sft")
    if train.train_noise:
        raise ConfigError("--train-noise: a map trains at each of --noise; give the rates there")
    if train.train_style:
        raise ConfigError("--train-style: a map trains in the task's own style and each of --off-styles")
    _check_styles(study, task)
    study = replace(
        study, start_scores=sorted(set(study.start_scores)), warmup_steps=sorted(set(study.warmup_steps))
    )
    pool = _check_pool(study, experiment) if study.start_scores else 0
    if any(study.noise):
        rows, source = training_rows(
            train.task, train.train_data, train.train_limit, train.prompt_template, train.train_offset
        )
        with_noise(rows, max(study.noise), train.seed, source)  # each row has an answer to corrupt
    return Continuum(study, experiment, pool)


def _check_styles(study: ContinuumConfig, task) -> None:
    for style in study.off_styles:
        if style not in task.styles:
            raise ConfigError(f"--off-styles {style}: {task.unknown_style(style)}")
        if style == task.styles[0]:
            raise ConfigError(
                f"--off-styles {style} is task {task.name}'s own style: every start trains on it"
            )
    if len(set(study.off_styles)) < len(study.off_styles):
        raise ConfigError(f"--off-styles {' '.join(study.off_styles)}: a style is named twice")


def _check_pool(study: ContinuumConfig, experiment: Experiment) -> int:
    """The warm-up pool's size, once it is known to hold a batch and every target to be reachable:
    above the backbone's own in-domain score and not above the best SFT in the reference folder."""
    # import cost: the rows and the backbones, once the flags parse
    from harness.data.rows import training_rows
    from harness.models import backbone_name

    train, config = experiment.train, experiment.config
    first = study.start_scores[0]
    if train.train_limit is None:
        raise ConfigError(
            f"--start-scores {first:g} needs --train-limit: the warm-up pool is the rows after the ones "
            "the mapped runs train on"
        )
    rows, source = training_rows(train.task, train.train_data, None, train.prompt_template)
    begin = train.train_offset + train.train_limit
    pool = len(rows) - begin
    if pool <= 0:
        raise ConfigError(
            f"--start-scores {first:g}: the warm-up pool is the rows after --train-limit {train.train_limit}, "
            f"and {source} has {len(rows)} (none left)"
        )
    if pool < train.batch_size:
        raise ConfigError(
            f"--start-scores {first:g}: the warm-up pool (rows {begin + 1}-{len(rows)} of {source}) has "
            f"{pool} rows, fewer than one batch (--batch-size {train.batch_size})"
        )
    backbone = backbone_name(train.model)
    own = _base_score(config, backbone)
    if own is not None and first <= own[0]:
        raise ConfigError(
            f"--start-scores {first:g}: the backbone itself scores {own[0]:.1f} in-domain ({own[1]}); "
            "a target must be above it"
        )
    best = _best_sft(config, backbone)
    last = study.start_scores[-1]
    if best is not None and last > best[0]:
        raise ConfigError(
            f"--start-scores {last:g}: above what SFT reaches on {config.task} from {backbone} in "
            f"{config.reference_dir}/ ({best[0]:.1f}, {best[1]}); the warm-up pool (rows {begin + 1}-"
            f"{len(rows)} of {source}, {pool} rows) is not expected to reach it"
        )
    return pool


def _reference_records(config, backbone: str, method: str) -> list[dict[str, Any]]:
    """The records of ``method`` on the task from ``backbone`` in the reference folder (none when
    ``--reference-dir ''``: then no target is checked before the search)."""
    root = Path(config.reference_dir) if config.reference_dir else None
    if root is None or not root.is_dir():
        return []
    return [
        r
        for r in results.load_records(root, skipped=[])
        if r["task"] == config.task and r["backbone"] == backbone and r["method"] == method
    ]


def in_domain(record: dict[str, Any]) -> float | None:
    """A record's in-domain score in percent: the mean of its test splits."""
    scores = [(s["value"], s["stderr"]) for s in record["scores"].values() if s["role"] == "test"]
    return 100 * mean_of_independent(scores)[0] if scores else None


def _base_score(config, backbone: str) -> tuple[float, str] | None:
    for record in _reference_records(config, backbone, BASE):
        if (score := in_domain(record)) is not None:
            return score, f"its base record in {config.reference_dir}/"
    return None


def _best_sft(config, backbone: str) -> tuple[float, str] | None:
    """The best in-domain score, over its seeds, of any SFT configuration recorded for the task and
    backbone, and which one."""
    by_config: dict[str, list[float]] = {}
    for record in _reference_records(config, backbone, BASELINE):
        if (score := in_domain(record)) is not None and not record["hparams"].get("train_noise"):
            by_config.setdefault(config_id(record["hparams"]), []).append(score)
    if not by_config:
        return None
    cid, scores = max(by_config.items(), key=lambda item: sum(item[1]) / len(item[1]))
    return sum(scores) / len(scores), f"sft-{cid}, {len(scores)} seed{'s' if len(scores) > 1 else ''}"


def warmup_config(continuum: Continuum, steps: int) -> TrainConfig:
    """The training of the warm-up of ``steps`` optimizer steps of SFT on the whole warm-up pool, in
    the task's own style and without noise, in its own run folder."""
    from harness.plan import hparams_of, run_root  # import cost: the planning reads tasks and models

    train = continuum.experiment.train
    config = replace(
        train,
        objective=BASELINE,
        **objective_defaults(BASELINE),
        train_offset=train.train_offset + train.train_limit,
        train_limit=continuum.pool_rows,
        steps=steps,
        seed=continuum.experiment.config.seeds[0],
        eval_every=0,
    )
    # Named by its whole configuration: another map's warm-up (another --train-limit, lr...) is
    # another starting point, never the same folder retrained or mistaken for this one.
    folder = run_root(continuum.experiment) / f"warmup-{steps}steps-{config_id(hparams_of(config, 1))}"
    return replace(config, output_dir=str(folder))


def probe(continuum: Continuum, steps: int) -> tuple[str, float]:
    """The warm-up of ``steps`` steps (trained once, then reused) and its own in-domain score (a
    fraction), measured once with the map's evaluation settings and kept in its folder."""
    # import cost: training and evaluation, only for a map that runs
    import tasks
    from harness.evaluation import evaluate_task
    from harness.launch import train_or_reuse
    from harness.plan import evaluation_of

    experiment = continuum.experiment
    config = warmup_config(continuum, steps)
    folder = Path(config.output_dir)
    print(f"== warm-up: SFT for {steps} steps on the {continuum.pool_rows} pool rows", file=sys.stderr)
    summary = train_or_reuse(config, experiment.config.nproc_per_node, not experiment.config.redo)
    evaluation = evaluation_of(experiment, BASE)
    found = read_json(folder / PROBE_FILE)
    if isinstance(found, dict) and found.get("evaluation") == evaluation and not experiment.config.redo:
        return summary["model_dir"], found["in_domain"]
    task = tasks.get(experiment.config.task)
    splits = [s.name for s in task.splits if s.role == "test"]
    settings = replace(experiment.evaluation, samples_dir=str(folder / "probe-samples"))
    scores = evaluate_task(summary["model_dir"], task, settings, splits=splits)
    score = mean_of_independent([(s["value"], s["stderr"]) for s in scores.values()])[0]
    made = {"steps": steps, "evaluation": evaluation, "scores": {k: s["value"] for k, s in scores.items()}}
    atomic_write_text(folder / PROBE_FILE, json.dumps(made | {"in_domain": score}, indent=2) + "\n")
    print(f"== warm-up of {steps} steps: {100 * score:.1f} in-domain", file=sys.stderr)
    return summary["model_dir"], score


def find_starts(continuum: Continuum) -> list[Start]:
    """The backbone, then for each target the warm-up chosen for it (see the module docstring):
    warm-ups are probed in ``--warmup-steps`` order, each trained and measured once for all targets."""
    study, backbone = continuum.study, continuum.experiment.train.model
    starts = [Start(backbone)]
    measured: dict[int, tuple[str, float]] = {}
    tolerance = study.start_tolerance / 100
    for target in study.start_scores:
        goal, tried = target / 100, []
        for steps in study.warmup_steps:
            if steps not in measured:
                measured[steps] = probe(continuum, steps)
            tried.append(steps)
            score = measured[steps][1]
            if abs(score - goal) <= tolerance or score > goal + tolerance:
                break
        chosen = min(tried, key=lambda s: (abs(measured[s][1] - goal), s))
        probes = [{"steps": s, "in_domain": measured[s][1]} for s in tried]
        starts.append(Start(measured[chosen][0], target, chosen, measured[chosen][1], probes))
        print(
            f"== start for {target:g}%: the warm-up of {chosen} steps ({100 * measured[chosen][1]:.1f})",
            file=sys.stderr,
        )
    return starts


def plan(continuum: Continuum) -> list[tuple[float | None, float, str | None, list[str]]]:
    """``(target, noise rate, style, methods)`` of every experiment of the map, in the order run:
    from each start (the backbone, target None, first) its own style without noise (with its base
    evaluation: its own scores and strengths), then each noise rate, then each off style."""
    trained = [m for m in continuum.experiment.config.methods if m != BASE]
    points = []
    for target in [None, *continuum.study.start_scores]:
        points.append((target, 0.0, None, [BASE, *trained]))
        points += [(target, rate, None, trained) for rate in sorted(set(continuum.study.noise)) if rate]
        points += [(target, 0.0, style, trained) for style in continuum.study.off_styles]
    return points


def point_experiment(
    continuum: Continuum, model: str, rate: float, style: str | None, methods: list[str]
) -> Experiment:
    shared = continuum.experiment
    train = replace(shared.train, model=model, train_noise=rate, train_style=style)
    return replace(shared, train=train, config=replace(shared.config, methods=methods))


def annotate_start(experiment: Experiment, start: Start, tolerance: float) -> None:
    """Keep in the start's base record its target and the search that found it (``start``); a
    record that says otherwise (another map's search) is updated, and says so."""
    from harness.plan import plan_method  # import cost: the planning reads tasks and models

    annotation = start.annotation(tolerance)
    if annotation is None:
        return
    path = plan_method(experiment, BASE).record
    with results.record_lock(path) as held:
        if not held or not path.exists():
            return
        record = results.read_record(path)
        if record.get("start") == annotation:
            return
        if "start" in record:
            print(f"== {path}: its start annotation is replaced by this map's search", file=sys.stderr)
        results.write_record(record | {"start": annotation}, Path(experiment.config.results_dir))


def describe(continuum: Continuum) -> str:
    """What ``--dry-run`` prints: the warm-ups measured so far, then every point of the map with its
    start, noise rate, style and methods, and the state of its runs; nothing is trained. The runs
    from a start not found yet, and every run under ``--redo``, are to do."""
    from harness.plan import evaluation_of, plan_method, replicates, status  # import cost: tasks, models

    shared, study = continuum.experiment, continuum.study
    lines, counts = [], Counter()
    evaluation = evaluation_of(shared, BASE)
    measured = {}
    for steps in study.warmup_steps:
        found = read_json(Path(warmup_config(continuum, steps).output_dir) / PROBE_FILE)
        if isinstance(found, dict) and found.get("evaluation") == evaluation:
            measured[steps] = found["in_domain"]
    if study.start_scores:
        known = ", ".join(f"{s} steps {100 * v:.1f}" for s, v in measured.items()) or "none yet"
        lines.append(f"warm-ups measured (in-domain): {known}")
    for target, rate, style, methods in plan(continuum):
        start, found = f"the backbone {shared.train.model}", True
        model = shared.train.model
        if target is not None:
            found = _chosen(study, measured, target)
            if found is None:
                start, found = f"a warm-up to {target:g}% (to find)", False
            else:
                config = warmup_config(continuum, found)
                start, model = (
                    f"the warm-up of {found} steps for {target:g}%",
                    str(Path(config.output_dir) / "model"),
                )
                found = True
        experiment = point_experiment(continuum, model, rate, style, methods)
        states = [
            status(plan_method(seeded, method)) if found and not shared.config.redo else "todo"
            for seeded, method in replicates(experiment)
        ]
        counts.update(states)
        tally = ", ".join(f"{n} {s}" for s, n in sorted(Counter(states).items()))
        lines.append(
            f"from {start}, --train-noise {rate:g}, style {style or 'own'}: {' '.join(methods)} ({tally})"
        )
    seeds = " ".join(str(s) for s in shared.config.seeds)
    total = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"seeds {seeds}; runs: {total}")
    return "\n".join(lines)


def _chosen(study: ContinuumConfig, measured: dict[int, float], target: float) -> int | None:
    """The warm-up :func:`find_starts` would choose for ``target`` from the probes measured so far,
    or None while the search would still train one."""
    goal, tolerance, tried = target / 100, study.start_tolerance / 100, []
    for steps in study.warmup_steps:
        if steps not in measured:
            return None
        tried.append(steps)
        if abs(measured[steps] - goal) <= tolerance or measured[steps] > goal + tolerance:
            break
    return min(tried, key=lambda s: (abs(measured[s] - goal), s))


@command
def main(argv: list[str] | None = None) -> int:
    started = time.time()
    continuum = parse_continuum(argv, description=__doc__.split("\n\n")[0])
    # import cost: training and evaluation, once the command line is known to be good
    import transformers

    from harness import leaderboard
    from harness.runs import run

    transformers.utils.logging.disable_progress_bar()
    if continuum.experiment.config.dry_run:
        print(describe(continuum))
        return 0
    starts = {start.target: start for start in find_starts(continuum)}
    for target, rate, style, methods in plan(continuum):
        start = starts[target]
        experiment = point_experiment(continuum, start.model, rate, style, methods)
        where = f"--train-noise {rate:g}, style {style or 'own'}"
        print(f"== from {start.model}, {where}: {' '.join(methods)}", file=sys.stderr)
        run(experiment)
        if BASE in methods:
            annotate_start(experiment, start, continuum.study.start_tolerance)
    config = continuum.experiment.config
    written = leaderboard.write(config.results_dir, config.leaderboard_dir)
    maps = [
        p for p in written if Path(p).name.startswith(f"continuum-{config.task}-") and Path(p).suffix == ".md"
    ]
    print(f"continuum: {len(maps)} map page(s) in {(time.time() - started) / 60:.1f} min", file=sys.stderr)
    for path in maps:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
