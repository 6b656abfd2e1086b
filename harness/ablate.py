"""Learning rate x batch size x method sweeps in one command, resumable and safe to run twice at once.

::

    python -m harness.ablate --domain math --lr 5e-4 1e-3 --batch-size 16 32        # 2 x 2 x (SFT, DFT)
    python -m harness.ablate --task code-lists --lr 1e-5 5e-5 1e-4 --batch-size 64 128 --method dft
    python -m harness.ablate ... --dry-run          # print the plan and each cell's status, run nothing
    python -m harness.ablate ... --print-commands   # one ready-to-run command per cell (job arrays)
    python -m harness.ablate ... --cell 3           # run only cell 3 (e.g. --cell $SLURM_ARRAY_TASK_ID)

The grid is every ``--lr`` x ``--batch-size`` x ``--method`` (default: SFT and DFT), plus one
evaluation of the untouched base model (``--no-base`` skips it). Every other flag of
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
evaluation died, continues a training from its last checkpoint (``--save-every``), and redoes the
rest. ``--redo`` runs every cell again. Two sweeps may share a results folder: each cell is locked
while it runs (the other sweep skips it and says so), records are replaced atomically, and renders
take turns.

>>> sweep = parse_args(["--lr", "1e-3", "2e-3", "--batch-size", "16", "32", "--method", "sft", "dft"])
>>> len(plan(sweep)), [(c.method, c.lr, c.batch_size) for c in plan(sweep)][:3]
(9, [('base', None, None), ('sft', 0.001, 16), ('sft', 0.001, 32)])
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import transformers

import tasks
from harness import cli, leaderboard, results
from harness.errors import DataError
from harness.experiment import (
    OWN_FIELDS,
    Experiment,
    ExperimentConfig,
    check_inputs,
    plan_method,
    preset_of,
    run_method,
    status,
    take_fields,
)
from harness.generate import Sampling
from harness.train import TrainConfig, TrainingError, split_batch

GRID_FIELDS = {"lr", "batch_size"}
# ExperimentConfig fields a sweep sets itself: the task (from --domain/--task), the methods of each
# cell, and skipping finished cells (always on; --redo turns it off).
SWEEP_OWN = {"task", "methods", "skip_finished"}
TRAINED = ("sft", "dft")


@dataclass
class Sweep:
    experiment: Experiment  # the shared settings; lr, batch size and method vary per cell
    lrs: list[float]
    batch_sizes: list[int]
    methods: list[str]
    base: bool
    dry_run: bool
    print_commands: bool
    cell: int | None
    argv: list[str]


@dataclass
class Cell:
    index: int
    method: str
    lr: float | None  # None for the base model
    batch_size: int | None
    experiment: Experiment

    def describe(self) -> str:
        if self.method == "base":
            return f"cell {self.index} (base model)"
        return f"cell {self.index} ({self.method}, lr {self.lr:g}, batch {self.batch_size})"


def _number(kind: type, flag: str):
    """An argparse type: a finite positive ``kind``, with an error that names the flag."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes numbers; {text!r} is not one") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag} values must be positive, got {text!r}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line naming the flag, not the 40-line usage
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(preset: dict) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m harness.ablate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1].split(">>>")[0],
    )
    grid = parser.add_argument_group("the grid")
    grid.add_argument(
        "--lr", nargs="+", type=_number(float, "--lr"), help="learning rates (default: the preset's)"
    )
    grid.add_argument(
        "--batch-size",
        nargs="+",
        type=_number(int, "--batch-size"),
        help="global batch sizes (default: the preset's)",
    )
    grid.add_argument("--method", nargs="+", choices=TRAINED, default=list(TRAINED), help="default: sft dft")
    grid.add_argument(
        "--base", action=argparse.BooleanOptionalAction, default=True, help="also evaluate the base"
    )
    where = grid.add_mutually_exclusive_group()
    domains = sorted({cls.domain for cls in tasks.TASKS.values()})
    where.add_argument("--domain", choices=domains, help="sweep the domain's training task")
    where.add_argument("--task", help="a registered task (default: math-words)")
    control = parser.add_argument_group("running")
    control.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    control.add_argument("--print-commands", action="store_true", help="print one command per cell and stop")
    control.add_argument("--cell", type=int, help="run only this cell of the plan (0-based)")
    control.add_argument("--redo", action="store_true", help="rerun cells that already have their record")
    cli.add_arguments(parser.add_argument_group("experiment"), ExperimentConfig, exclude=SWEEP_OWN)
    cli.add_arguments(
        parser.add_argument_group("training (each cell)"),
        TrainConfig,
        defaults=preset | {"model": None},
        exclude=OWN_FIELDS | GRID_FIELDS,
    )
    cli.add_arguments(parser.add_argument_group("sampling"), Sampling)
    return parser


def parse_args(argv: list[str] | None = None) -> Sweep:
    """The sweep a command line asks for; a bad value raises ValueError (or exits, for argparse)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = preset_of(argv)
    args = vars(build_parser(preset).parse_args(argv))
    domain, task = args.pop("domain"), args.pop("task")
    task = tasks.for_domain(domain) if domain else (task or "math-words")
    tasks.get(task)  # a typo fails here, with "did you mean"
    grid = {key: args.pop(key) for key in ("lr", "batch_size", "method", "base")}
    control = {key: args.pop(key) for key in ("dry_run", "print_commands", "cell", "redo")}
    config = ExperimentConfig(
        **take_fields(args, ExperimentConfig, SWEEP_OWN),
        task=task,
        methods="base",
        skip_finished=not control["redo"],
    )
    sampling = Sampling(**take_fields(args, Sampling))
    train = take_fields(args, TrainConfig, OWN_FIELDS | GRID_FIELDS)
    if train["model"] is None:  # the embedded model that can do the task
        train["model"] = "tiny-vl" if tasks.get(task).domain == "vlm" else "tiny"
    train_config = TrainConfig(
        **train,
        task=task,
        lr=preset.get("lr", TrainConfig.lr),
        batch_size=preset.get("batch_size", TrainConfig.batch_size),
    )
    if train_config.curve_limit is None:
        train_config = replace(train_config, curve_limit=config.eval_limit)
    lrs = _unique(grid["lr"] or [train_config.lr])
    batch_sizes = _unique(grid["batch_size"] or [train_config.batch_size])
    for batch in batch_sizes:  # a batch that cannot be split over the ranks fails before any cell runs
        split_batch(batch, train_config.micro_batch_size, config.nproc_per_node)
    sweep = Sweep(
        Experiment(config, train_config, sampling),
        lrs,
        batch_sizes,
        _unique(grid["method"]),
        grid["base"],
        control["dry_run"],
        control["print_commands"],
        control["cell"],
        argv,
    )
    check_inputs(train_config)  # a missing model or data file fails before the plan, not in every cell
    cells = len(plan(sweep))
    if sweep.cell is not None and not 0 <= sweep.cell < cells:
        raise ValueError(f"--cell {sweep.cell}: the plan has cells 0 to {cells - 1}")
    return sweep


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def plan(sweep: Sweep) -> list[Cell]:
    """The cells in a fixed order: the base model, then method by method, lr by lr, batch by batch.
    The order depends only on the command line, so ``--cell N`` means the same cell everywhere."""
    shared = sweep.experiment
    cells = []
    if sweep.base:
        cells.append(
            Cell(0, "base", None, None, replace(shared, config=replace(shared.config, methods="base")))
        )
    for method in sweep.methods:
        for lr in sweep.lrs:
            for batch in sweep.batch_sizes:
                micro, _ = split_batch(batch, shared.train.micro_batch_size, shared.config.nproc_per_node)
                train = replace(shared.train, lr=lr, batch_size=batch, micro_batch_size=micro)
                experiment = Experiment(replace(shared.config, methods=method), train, shared.sampling)
                cells.append(Cell(len(cells), method, lr, batch, experiment))
    return cells


def print_plan(sweep: Sweep, cells: list[Cell]) -> None:
    shared = sweep.experiment
    trained = [c for c in cells if c.method != "base"]
    print(
        f"sweep of {shared.config.task} from {shared.train.model}: {len(sweep.lrs)} lr x "
        f"{len(sweep.batch_sizes)} batch x {len(sweep.methods)} method = {len(trained)} trained cells"
        + (" + base" if sweep.base else "")
        + f"; records in {shared.config.results_dir}/, leaderboards in {shared.config.leaderboard_dir}/"
    )
    ranks = shared.config.nproc_per_node
    print(
        f"{'cell':>4}  {'method':6}  {'lr':>8}  {'batch':>5}  {'micro x accum x ranks':21}  {'status':8}  record"
    )
    for cell in cells:
        planned = plan_method(cell.experiment, cell.method)
        if cell.method == "base":
            lr = batch = split = "-"
        else:
            micro, accumulation = split_batch(cell.batch_size, shared.train.micro_batch_size, ranks)
            lr, batch, split = f"{cell.lr:g}", str(cell.batch_size), f"{micro} x {accumulation} x {ranks}"
        print(
            f"{cell.index:>4}  {cell.method:6}  {lr:>8}  {batch:>5}  {split:21}  {status(planned):8}  {planned.record}"
        )


def commands(sweep: Sweep, cells: list[Cell]) -> list[str]:
    """One command per cell: this sweep restricted to that cell with ``--cell``."""
    argv = [a for a in sweep.argv if a not in ("--print-commands", "--dry-run")]
    return [
        shlex.join([sys.executable, "-m", "harness.ablate", *argv, "--cell", str(c.index)]) for c in cells
    ]


def run(sweep: Sweep) -> int:
    """Run the sweep's cells (or its one ``--cell``); returns the exit status."""
    cells = plan(sweep)
    if sweep.print_commands:
        print("\n".join(commands(sweep, cells)))
        return 0
    print_plan(sweep, cells)
    if sweep.dry_run:
        return 0
    chosen = cells if sweep.cell is None else [cells[sweep.cell]]
    started, outcome = time.time(), {"made": [], "finished before": [], "running elsewhere": [], "failed": []}
    config = sweep.experiment.config
    rendered = False
    for cell in chosen:
        planned = plan_method(cell.experiment, cell.method)
        if config.skip_finished and results.finished(planned.record, planned.slot, planned.evaluation):
            print(f"== {cell.describe()}: finished before, {planned.record}", file=sys.stderr)
            outcome["finished before"].append(cell)
            continue
        print(f"== {cell.describe()}", file=sys.stderr)
        try:
            path = run_method(cell.experiment, cell.method)
        except (TrainingError, DataError, ValueError, KeyError, FileNotFoundError, OSError) as error:
            message = error.args[0] if isinstance(error, KeyError) else error
            print(f"error: {cell.describe()} failed: {message}", file=sys.stderr)
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
    try:
        leaderboard.write(config.results_dir, config.leaderboard_dir)
    except (OSError, ValueError) as error:
        print(f"warning: the leaderboards were not re-rendered: {error}", file=sys.stderr)
    return True


def main(argv: list[str] | None = None) -> int:
    transformers.utils.logging.disable_progress_bar()
    try:
        return run(parse_args(argv))
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"error: {error.args[0] if isinstance(error, KeyError) else error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
