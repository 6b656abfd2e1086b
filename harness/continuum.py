"""Where on the model-capability continuum each objective beats SFT: one command, one map.

::

    python -m harness.continuum --task math-words --methods sft,dft,q-family,asft --train-limit 1000
    python -m harness.continuum ... --warmup-rows 0 64 256 --noise 0 0.2 0.4 --seeds 0 1 2

Two axes, each a series of ordinary experiments (records in ``--results-dir``, reused when
finished, like every run):

- **prior strength**: a ladder of starting points made from the backbone (``--model``) by SFT on
  ``K`` rows of the task for each ``K`` in ``--warmup-rows``: rows the mapped runs never train on
  (the ``K`` after their ``--train-limit``). Each starting point's strength is the mean probability
  it gives the mapped runs' training targets, measured by its base evaluation (``--prob-rows``).
  Every method in ``--methods`` trains from each starting point with the same data and settings.
- **demonstration noise**: every method trains from the backbone with ``--train-noise r`` for each
  ``r`` in ``--noise``: a seeded fraction of the training rows gets another row's final answer.

The map itself is a page of the leaderboard folder, ``continuum-<task>-<map id>.md``
(:mod:`harness.report.continuum`), rendered from the records alone: each objective minus SFT,
in-domain and out of domain, against strength and against noise.

>>> plan(parse_continuum(["--methods", "sft,dft", "--train-limit", "64", "--warmup-rows", "0", "32",
...                       "--noise", "0", "0.25"]))
[(0, 0.0, 'base,sft,dft'), (32, 0.0, 'base,sft,dft'), (0, 0.25, 'sft,dft')]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import transformers

from harness import leaderboard
from harness.config import (
    RUN,
    Parser,
    TrainConfig,
    add_arguments,
    at_least,
    below_one,
    check_fields,
    config_from,
    objective_defaults,
    preset_of,
    setting,
)
from harness.config.resolve import Experiment, experiment_parser, resolve_experiment
from harness.data.noise import with_noise
from harness.data.rows import training_rows
from harness.errors import ConfigError, HarnessError
from harness.identity import config_id
from harness.runs import (
    hparams_of,
    plan_method,
    read_json,
    replicates,
    run,
    run_root,
    status,
    train_or_reuse,
)


@dataclass
class ContinuumConfig:
    """``python -m harness.continuum``: one training from a ladder of starting points of increasing
    strength, and at several demonstration-noise rates (:mod:`harness.report.continuum` maps them)."""

    warmup_rows: list[int] = setting(
        [0, 64, 256],
        "the prior-strength ladder: one starting point per K, the backbone after SFT on K rows of the "
        "task that the mapped runs never see (the rows after their --train-limit); 0 is the backbone",
        role=RUN,
        check=at_least(0),
    )
    noise: list[float] = setting(
        [0.0, 0.2, 0.4],
        "--train-noise rates the methods train at, from the backbone itself",
        role=RUN,
        check=below_one,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class Continuum:
    """What ``python -m harness.continuum`` runs: the ladder and noise rates, and the experiment every
    point shares (its --model is the ladder's foot)."""

    study: ContinuumConfig
    experiment: Experiment


def parser(preset: dict[str, Any], description: str = "") -> Parser:
    parser = Parser(prog="python -m harness.continuum", description=description)
    add_arguments(parser.add_argument_group("the map"), ContinuumConfig)
    return experiment_parser(preset, parser)


def parse_continuum(argv: list[str] | None = None, description: str = "") -> Continuum:
    """``python -m harness.continuum``'s command line, resolved: the experiment's flags, the ladder
    and the noise rates, each checked before any run (the warm-up pool must exist past the mapped
    runs' rows, every row must have an answer to corrupt, SFT must be trained: it is the baseline).

    >>> parse_continuum(["--warmup-rows", "0", "64", "--methods", "sft,dft", "--train-limit", "5000"])
    Traceback (most recent call last):
    ...
    harness.errors.ConfigError: --warmup-rows 64: the warm-up pool is the rows after --train-limit 5000, and task math-words split train has 2000
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = preset_of(argv)
    args = vars(parser(preset, description).parse_args(argv))
    study = config_from(args, ContinuumConfig)
    experiment = resolve_experiment(args, preset)
    train = experiment.train
    if "sft" not in experiment.config.method_list:
        raise ConfigError("--methods: a map compares each objective with SFT, so it must include sft")
    if train.train_noise:
        raise ConfigError("--train-noise: a map trains at each of --noise; give the rates there")
    pool = max(study.warmup_rows)
    short = [rows for rows in study.warmup_rows if 0 < rows < train.batch_size]
    if short:  # a warm-up trains whole batches of the mapped runs' size
        raise ConfigError(
            f"--warmup-rows {short[0]} is fewer than --batch-size {train.batch_size}: a warm-up "
            "trains at least one batch"
        )
    if pool:
        if train.train_limit is None:
            raise ConfigError(
                f"--warmup-rows {pool} needs --train-limit: the warm-up pool is the rows after the ones "
                "the mapped runs train on"
            )
        rows, source = training_rows(train.task, train.train_data, None, train.prompt_template)
        if train.train_offset + train.train_limit + pool > len(rows):
            raise ConfigError(
                f"--warmup-rows {pool}: the warm-up pool is the rows after --train-limit "
                f"{train.train_limit}, and {source} has {len(rows)}"
            )
    if any(study.noise):
        rows, source = training_rows(
            train.task, train.train_data, train.train_limit, train.prompt_template, train.train_offset
        )
        with_noise(rows, max(study.noise), train.seed, source)  # each row has an answer to corrupt
    return Continuum(study, experiment)


def plan(continuum: Continuum) -> list[tuple[int, float, str]]:
    """``(warm-up rows, noise rate, methods)`` of every experiment of the map, in the order run: the
    ladder from the backbone (0 rows, always a point) up, each with its base evaluation (the
    strength), then the noise rates from the backbone."""
    methods = [m for m in continuum.experiment.config.method_list if m != "base"]
    rungs = sorted({0, *continuum.study.warmup_rows})
    points = [(rows, 0.0, ",".join(["base", *methods])) for rows in rungs]
    return points + [(0, rate, ",".join(methods)) for rate in sorted(set(continuum.study.noise)) if rate]


def warmup_config(experiment: Experiment, rows: int) -> TrainConfig:
    """The training of the starting point after SFT on the ``rows`` training rows past the mapped
    runs' own, in its own run folder."""
    train = experiment.train
    config = replace(
        train,
        objective="sft",
        **objective_defaults("sft"),
        train_offset=train.train_offset + train.train_limit,
        train_limit=rows,
        seed=experiment.config.seeds[0],
        eval_every=0,
    )
    # Named by its whole configuration: another map's warm-up of K rows (another --train-limit, lr...)
    # is another starting point, never the same folder retrained or mistaken for this one.
    folder = run_root(experiment) / f"warmup-{rows}-{config_id(hparams_of(config, 1))}"
    return replace(config, output_dir=str(folder))


def warm_up(experiment: Experiment, rows: int) -> str:
    """The starting point after SFT on ``rows`` rows (:func:`warmup_config`; trained once, then
    reused): its model folder."""
    config = warmup_config(experiment, rows)
    print(f"== warm-up: SFT on {rows} rows past the first {config.train_offset}", file=sys.stderr)
    summary = train_or_reuse(config, experiment.config.nproc_per_node, not experiment.config.redo)
    return summary["model_dir"]


def map_experiments(continuum: Continuum) -> list[Experiment]:
    """The experiments of :func:`plan`, with each warm-up trained (or reused) on the way."""
    shared = continuum.experiment
    experiments = []
    for rows, rate, methods in plan(continuum):
        model = warm_up(shared, rows) if rows else shared.train.model
        train = replace(shared.train, model=model, train_noise=rate)
        experiments.append(replace(shared, train=train, config=replace(shared.config, methods=methods)))
    return experiments


def describe(continuum: Continuum) -> str:
    """What ``--dry-run`` prints: every point of the map with its starting point, noise rate and
    methods, and the state of each of its runs (``done``, ``todo``...); nothing is trained. The runs
    from a warm-up not trained yet, and every run under ``--redo``, are to do."""
    shared = continuum.experiment
    lines, counts = [], Counter()
    for rows, rate, methods in plan(continuum):
        train = replace(shared.train, train_noise=rate)
        start = f"the backbone {shared.train.model}"
        trained = True
        if rows:
            warmup = warmup_config(shared, rows)
            summary = read_json(Path(warmup.output_dir) / "train_summary.json")
            trained = isinstance(summary, dict) and "model_dir" in summary and not shared.config.redo
            start = f"a warm-up on {rows} rows ({'trained' if trained else 'to train'}: {warmup.output_dir})"
            # Where a real run finds it: the model folder inside the warm-up's folder.
            train = replace(train, model=str(Path(warmup.output_dir) / "model"))
        experiment = replace(shared, train=train, config=replace(shared.config, methods=methods))
        states = [
            status(plan_method(seeded, method)) if trained and not shared.config.redo else "todo"
            for seeded, method in replicates(experiment)
        ]
        counts.update(states)
        tally = ", ".join(f"{n} {s}" for s, n in sorted(Counter(states).items()))
        lines.append(f"from {start}, --train-noise {rate:g}: {methods} ({tally})")
    seeds = " ".join(str(s) for s in shared.config.seeds)
    total = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"seeds {seeds}; runs: {total}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    transformers.utils.logging.disable_progress_bar()
    started = time.time()
    try:
        continuum = parse_continuum(argv, description=__doc__.split("\n\n")[0])
        if continuum.experiment.config.dry_run:
            print(describe(continuum))
            return 0
        for experiment in map_experiments(continuum):
            model, rate = experiment.train.model, experiment.train.train_noise
            print(f"== from {model}, --train-noise {rate:g}: {experiment.config.methods}", file=sys.stderr)
            run(experiment)
        config = continuum.experiment.config
        written = leaderboard.write(config.results_dir, config.leaderboard_dir)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    maps = [
        p for p in written if Path(p).name.startswith(f"continuum-{config.task}-") and Path(p).suffix == ".md"
    ]
    print(f"continuum: {len(maps)} map page(s) in {(time.time() - started) / 60:.1f} min", file=sys.stderr)
    for path in maps:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
