"""Learning rate x batch size x method sweeps in one command, resumable and safe to run twice at once.

::

    python -m harness.ablate --domain math --lr 5e-4 1e-3 --batch-size 16 32        # 2 x 2 x (SFT, DFT)
    python -m harness.ablate --task code-lists --lr 1e-5 5e-5 1e-4 --batch-size 64 128 --methods base dft
    python -m harness.ablate --lr 5e-4 1e-3 --seeds 0 1 2   # every cell three times: seed variance
    python -m harness.ablate ... --dry-run          # print the plan and each cell's status, run nothing
    python -m harness.ablate ... --print-commands   # one ready-to-run command per cell (job arrays)
    python -m harness.ablate ... --cell 3           # run only cell 3 (e.g. --cell $SLURM_ARRAY_TASK_ID)

The grid is every ``--lr`` x ``--batch-size`` x objective of ``--methods`` (default: base, SFT and
DFT) x ``--seeds`` (default: 0; each seed is a record of its own, averaged on the pages), plus one
evaluation of the untouched base model where ``--methods`` holds ``base``. Every other flag of
``harness.experiment`` applies to each cell: ``--model``, ``--preset``, ``--epochs``,
``--eval-every``, ``--nproc-per-node`` (each cell under ``torchrun``) and the rest. Each cell trains
with the shared trainer, is evaluated like an experiment, and writes one record; the leaderboards
(with the ablation page and its plots) are re-rendered after each cell.

``--batch-size`` is the global batch (all ranks and accumulation steps). ``--micro-batch-size`` is
the most examples that fit in one forward pass; each cell uses the largest micro-batch up to it
that divides its share, with gradient accumulation making up the rest (the record's
``data.gradient_accumulation`` and ``hparams.micro_batch_size`` say how).

Resuming: a rerun skips every cell whose record already holds exactly its configuration and
evaluation settings (compared field by field, not by file name), reuses a finished training whose
evaluation died, continues a training from its last checkpoint (``--save-every``), and runs the
rest. A record of a cell evaluated otherwise stops the sweep before any cell runs; ``--redo`` runs
every cell again and replaces their records, printing which scores changed. Two sweeps may share a results folder: each cell is locked
while it runs (the other sweep skips it and says so), records are replaced atomically, and renders
take turns.

>>> sweep = parse_args(["--lr", "1e-3", "2e-3", "--batch-size", "16", "32", "--methods", "base", "sft", "dft"])
>>> len(plan(sweep)), [(c.method, c.lr, c.batch_size) for c in plan(sweep)][:3]
(9, [('base', None, None), ('sft', 0.001, 16), ('sft', 0.001, 32)])
>>> [(c.method, c.seed) for c in plan(parse_args(["--methods", "base", "sft", "--seeds", "0", "1"]))]
[('base', None), ('sft', 0), ('sft', 1)]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import (
    ExperimentConfig,
    Parser,
    TrainConfig,
    add_arguments,
    at_least,
    axis,
    check_fields,
    config_from,
    dry_run,
    experiment_parser,
    preset_of,
    setting,
    split_batch,
)
from harness.errors import ConfigError, HarnessError, command
from harness.objectives import BASE

if TYPE_CHECKING:
    from harness.resolve import Experiment


@dataclass
class SweepConfig:
    """``python -m harness.ablate``: the grid and how to run it; every experiment flag applies too."""

    lr: list[float] | None = axis("lr")
    batch_size: list[int] | None = axis("batch_size")
    domain: str | None = setting(None, "sweep the domain's training task")
    task: str | None = setting(None, "a registered task (default: math-words)")
    dry_run: bool = dry_run("the cells of the grid, each with its command")
    print_commands: bool = setting(False, "print one command per cell and stop")
    cell: int | None = setting(None, "run only this cell of the plan (0-based)", check=at_least(0))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.domain is not None and self.task is not None:
            raise ConfigError("--domain and --task: give one of them")


@dataclass
class Sweep:
    """What ``python -m harness.ablate`` runs: the grid and the settings every cell shares."""

    grid: SweepConfig
    experiment: Experiment  # lr, batch size and method vary per cell
    lrs: list[float]
    batch_sizes: list[int]
    objectives: list[str]  # trained in every cell (--methods less base)
    base: bool  # --methods holds base: the backbone is evaluated once
    max_micro_batch_size: int  # --micro-batch-size: each cell derives its own split from it
    argv: list[str]


def sweep_parser(preset: dict[str, Any], description: str = "", epilog: str = "") -> Parser:
    parser = Parser(
        prog="python -m harness.ablate",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recipe_task = {"task": preset["task"]} if "task" in preset else {}  # the axes stay the sweep's own
    add_arguments(parser.add_argument_group("the grid and how to run it"), SweepConfig, defaults=recipe_task)
    experiment_parser(preset, parser, sweep=True)
    return parser


def parse_sweep(argv: list[str] | None = None, description: str = "", epilog: str = "") -> Sweep:
    """``python -m harness.ablate``'s command line, resolved: an omitted axis takes the preset's
    value, ``--domain`` picks the domain's training task, and every cell's batch split is checked."""
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = preset_of(argv)
    args = vars(sweep_parser(preset, description, epilog).parse_args(argv))
    grid = config_from(args, SweepConfig)
    # import cost: the task registry and the resolve step (torch), once the flags parse
    import tasks
    from harness.resolve import check_inputs, check_task, check_trainable, resolve_experiment

    try:
        task = tasks.for_domain(grid.domain) if grid.domain else (grid.task or "math-words")
    except KeyError as error:
        raise ConfigError(f"--domain {error.args[0]}") from None
    check_task(task)
    default = TrainConfig.__dataclass_fields__
    lrs = list(dict.fromkeys(grid.lr or [preset.get("lr", default["lr"].default)]))
    batch_sizes = list(
        dict.fromkeys(grid.batch_size or [preset.get("batch_size", default["batch_size"].default)])
    )
    max_micro = args["micro_batch_size"]
    args |= {"lr": lrs[0], "batch_size": batch_sizes[0]}  # the shared settings are those of the first cell
    methods = list(dict.fromkeys(args.pop("methods")))
    objectives = [m for m in methods if m != BASE]
    if not objectives:
        raise ConfigError(
            "--methods: a sweep trains at least one objective in every cell (--methods base sft dft)"
        )
    experiment = resolve_experiment(
        args, preset, objectives=objectives, task=task, methods=[BASE], dry_run=False
    )
    for batch in batch_sizes:  # a batch that cannot be split over the ranks fails before any cell runs
        split_batch(batch, max_micro, experiment.config.world_size)
    # Every cell trains but the base: each batch must fit the rows (resolved above with the first).
    largest = replace(experiment.train, batch_size=max(batch_sizes))
    check_trainable(largest)
    if largest.train_data and max(batch_sizes) != batch_sizes[0]:
        check_inputs(largest, objectives)
    return Sweep(grid, experiment, lrs, batch_sizes, objectives, BASE in methods, max_micro, argv)


@dataclass
class Cell:
    index: int
    method: str
    lr: float | None  # None for the base model
    batch_size: int | None
    seed: int | None
    experiment: Experiment

    def describe(self) -> str:
        if self.method == BASE:
            return f"cell {self.index} (base model)"
        return f"cell {self.index} ({self.method}, lr {self.lr:g}, batch {self.batch_size}, seed {self.seed})"


def parse_args(argv: list[str] | None = None) -> Sweep:
    """The sweep a command line asks for, resolved and checked (:func:`parse_sweep`);
    a ``--cell`` outside the plan is an error too."""
    sweep = parse_sweep(
        argv, description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1].split(">>>")[0]
    )
    cells = len(plan(sweep))
    if sweep.grid.cell is not None and not sweep.grid.cell < cells:
        raise ConfigError(f"--cell {sweep.grid.cell}: the plan has cells 0 to {cells - 1}")
    return sweep


def plan(sweep: Sweep) -> list[Cell]:
    """The cells in a fixed order: the base model, then method by method, lr by lr, batch by batch,
    seed by seed. The order depends only on the command line, so ``--cell N`` means the same cell
    everywhere."""
    from harness.resolve import Experiment, resolve_train  # import cost: the resolve step (torch)

    shared = sweep.experiment
    cells = []
    if sweep.base:
        base = replace(shared, config=replace(shared.config, methods=[BASE]))
        cells.append(Cell(0, BASE, None, None, None, base))
    for method in sweep.objectives:
        for lr in sweep.lrs:
            for batch in sweep.batch_sizes:
                for seed in shared.config.seeds:
                    cell = replace(
                        shared.train,
                        lr=lr,
                        batch_size=batch,
                        micro_batch_size=sweep.max_micro_batch_size,
                        seed=seed,
                    )
                    train = resolve_train(cell, shared.config.world_size)  # the cell's own batch split
                    config = replace(shared.config, methods=[method], seeds=[seed])
                    cells.append(
                        Cell(len(cells), method, lr, batch, seed, Experiment(config, train, shared.sampling))
                    )
    return cells


def print_plan(sweep: Sweep, cells: list[Cell]) -> None:
    from harness.plan import plan_method, status  # import cost: the planning reads tasks

    shared = sweep.experiment
    trained = [c for c in cells if c.method != BASE]
    print(
        f"sweep of {shared.config.task} from {shared.train.model}: {len(sweep.lrs)} lr x "
        f"{len(sweep.batch_sizes)} batch x {len(sweep.objectives)} method = {len(trained)} trained cells"
        + (" + base" if sweep.base else "")
        + f"; records in {shared.config.results_dir}/, leaderboards in {shared.config.leaderboard_dir}/"
    )
    ranks = shared.config.world_size
    print(
        f"{'cell':>4}  {'method':6}  {'lr':>8}  {'batch':>5}  {'seed':>4}  {'micro x accum x ranks':21}"
        f"  {'status':8}  record"
    )
    for cell in cells:
        planned = plan_method(cell.experiment, cell.method)
        if cell.method == BASE:
            lr = batch = seed = split = "-"
        else:
            micro, accumulation = split_batch(cell.batch_size, sweep.max_micro_batch_size, ranks)
            lr, batch, split = f"{cell.lr:g}", str(cell.batch_size), f"{micro} x {accumulation} x {ranks}"
            seed = str(cell.seed)
        print(
            f"{cell.index:>4}  {cell.method:6}  {lr:>8}  {batch:>5}  {seed:>4}  {split:21}  {status(planned):8}"
            f"  {planned.record}"
        )


def commands(sweep: Sweep, cells: list[Cell]) -> list[str]:
    """One command per cell: this sweep restricted to that cell with ``--cell``."""
    argv = [a for a in sweep.argv if a not in ("--print-commands", "--dry-run")]
    return [
        shlex.join([sys.executable, "-m", "harness.ablate", *argv, "--cell", str(c.index)]) for c in cells
    ]


def run(sweep: Sweep) -> int:
    """Run the sweep's cells (or its one ``--cell``); returns the exit status."""
    # import cost: training and evaluation, once the sweep is known to be good
    from harness import results
    from harness.plan import check_existing, plan_method
    from harness.runs import run_method

    cells = plan(sweep)
    if sweep.grid.print_commands:
        print("\n".join(commands(sweep, cells)))
        return 0
    print_plan(sweep, cells)
    if sweep.grid.dry_run:
        return 0
    chosen = cells if sweep.grid.cell is None else [cells[sweep.grid.cell]]
    config = sweep.experiment.config
    check_existing([plan_method(c.experiment, c.method) for c in chosen], config.redo)
    started, outcome = time.time(), {"made": [], "finished before": [], "running elsewhere": [], "failed": []}
    rendered = False
    for cell in chosen:
        planned = plan_method(cell.experiment, cell.method)
        if not config.redo and results.finished(planned.record, planned.slot, planned.evaluation):
            print(f"== {cell.describe()}: finished before, {planned.record}", file=sys.stderr)
            outcome["finished before"].append(cell)
            continue
        print(f"== {cell.describe()}", file=sys.stderr)
        try:
            path = run_method(cell.experiment, cell.method)
        except (HarnessError, OSError) as error:
            print(f"error: {cell.describe()} failed: {error}", file=sys.stderr)
            outcome["failed"].append(cell)
            continue
        outcome["made" if path is not None else "running elsewhere"].append(cell)
        rendered = _render(config)  # finished cells show at once
    if not rendered and Path(config.results_dir).is_dir():
        _render(config)
    minutes = (time.time() - started) / 60
    summary = ", ".join(f"{len(v)} {k}" for k, v in outcome.items() if v)
    print(f"sweep: {summary or 'nothing to do'} in {minutes:.1f} min", file=sys.stderr)
    for cell in outcome["running elsewhere"]:
        print(f"note: {cell.describe()} was running in another process; rerun to pick it up", file=sys.stderr)
    return 1 if outcome["failed"] else 0


def _render(config: ExperimentConfig) -> bool:
    """Re-render the leaderboards; a failure is reported, never allowed to stop the sweep."""
    from harness import leaderboard  # import cost: the report wing, only when a cell finished

    try:
        leaderboard.write(config.results_dir, config.leaderboard_dir)
    except (OSError, HarnessError) as error:
        print(f"warning: the leaderboards were not re-rendered: {error}", file=sys.stderr)
    return True


@command
def main(argv: list[str] | None = None) -> int:
    sweep = parse_args(argv)
    import transformers  # import cost: only for a sweep that runs

    transformers.utils.logging.disable_progress_bar()
    return run(sweep)


if __name__ == "__main__":
    sys.exit(main())
