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

>>> from harness.config.resolve import parse_continuum
>>> plan(parse_continuum(["--methods", "sft,dft", "--train-limit", "64", "--warmup-rows", "0", "32",
...                       "--noise", "0", "0.25"]))
[(0, 0.0, 'base,sft,dft'), (32, 0.0, 'base,sft,dft'), (0, 0.25, 'sft,dft')]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import transformers

from harness import leaderboard
from harness.config import TrainConfig, objective_defaults
from harness.config.resolve import Continuum, Experiment, parse_continuum
from harness.errors import HarnessError
from harness.experiment import (
    hparams_of,
    plan_method,
    read_json,
    replicates,
    run,
    run_root,
    status,
    train_or_reuse,
)
from harness.results import config_id


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
