"""The replicate study's page: seeds against numeric paths (:mod:`harness.report.replicates`).

::

    python -m harness.replicates --task math-words --results-dir results --paths-dir studies/numeric-paths

Reads the seeds of a configuration from ``--results-dir`` and, from each folder under
``--paths-dir``, the same configuration's runs under another numeric path (made with
``python -m harness.experiment --results-dir studies/numeric-paths/<path>`` and the environment of
that path: ``HARNESS_NUMERICS=native``, ``ATEN_CPU_CAPABILITY``, ``OMP_NUM_THREADS``); writes
``replicates-<task>.md`` into ``--leaderboard-dir``, which the index links.

>>> main(["--task", "no-such-task"])  # one line on stderr: error: --task unknown task 'no-such-task'; ...
1
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.config import Parser, add_arguments, check_fields, leaderboard_dir, results_dir, setting
from harness.errors import ConfigError, command
from harness.files import atomic_write_text
from harness.report import replicates
from harness.results import load_records


@dataclass
class ReplicatesConfig:
    """``python -m harness.replicates``: which seeds, which numeric paths, where the page goes."""

    task: str = setting("math-words", "the task whose configuration was replicated")
    results_dir: str = results_dir("results", " (the seeds of the reference environment)")
    paths_dir: str = setting(
        "studies/numeric-paths",
        "one results folder per numeric path, each holding the same configuration's runs",
    )
    leaderboard_dir: str = leaderboard_dir("leaderboards", " (the page replicates-<task>.md)")

    def __post_init__(self) -> None:
        check_fields(self)


def parse_replicates(argv: list[str] | None = None) -> ReplicatesConfig:
    parser = Parser(prog="python -m harness.replicates", description=__doc__.split("\n")[0])
    add_arguments(parser, ReplicatesConfig)
    config = ReplicatesConfig(**vars(parser.parse_args(sys.argv[1:] if argv is None else argv)))
    from harness.resolve import check_task  # import cost: the task registry, once the flags parse

    check_task(config.task)
    for flag, folder in (("--results-dir", config.results_dir), ("--paths-dir", config.paths_dir)):
        if not Path(folder).is_dir():
            raise ConfigError(f"{flag} {folder}: no such folder")
    return config


@command
def main(argv: list[str] | None = None) -> int:
    config = parse_replicates(argv)
    seeds = [r for r in load_records(config.results_dir, skipped=[]) if r["task"] == config.task]
    paths = {
        folder.name: [r for r in load_records(folder, skipped=[]) if r["task"] == config.task]
        for folder in sorted(Path(config.paths_dir).iterdir())
        if folder.is_dir()
    }
    if not any(paths.values()):
        raise ConfigError(f"--paths-dir {config.paths_dir}: no records of task {config.task} in its folders")
    line = "python -m harness.replicates " + shlex.join(sys.argv[1:] if argv is None else argv)
    made = replicates.page(config.task, seeds, paths, line.strip())
    print(atomic_write_text(Path(config.leaderboard_dir) / f"replicates-{config.task}.md", made.text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
