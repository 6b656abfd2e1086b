"""One name per setting across commands: a setting that two commands share is declared once, so it
has the same flag and the same help in both (``--eval-limit`` in the experiment and in
``harness.evaluate``, ``--results-dir`` in the experiment and in ``harness.leaderboard``).

Walked: the parser of every command (the configs' and the hand-built ones), each flag with its help
as ``--help`` shows it, less the ``(default: ...)`` that depends on the command.
"""

from __future__ import annotations

import importlib
import os
import re
from collections import defaultdict

import pytest

from harness import ablate, continuum, evaluate, experiment, leaderboard, lmeval, selfgen, token_probs
from harness.bench import performance
from harness.config import AXIS_NOTE, makeable_folder, preset_of, train_parser

# Flags whose meaning is the command's own: what the task is used for, where the output goes.
PER_COMMAND = {"--task", "--output-dir", "--out", "--help", "--device"}


def _parsers():
    laptop = preset_of([])
    return [
        train_parser(preset_of([], default="paper-math", by_model=False)),
        experiment.parser(laptop),
        ablate.sweep_parser(laptop),
        continuum.parser(laptop),
        evaluate.parser(),
        selfgen.parser(),
        token_probs.parser(),
        lmeval.parser(),
        leaderboard.parser(),
        performance.parser(),
    ]


def _flags():
    """``(command, flag, help)`` for every long flag of every command: every name an action has
    (an alias is a second name), less the ``--no-`` form of a switch."""
    for parser in _parsers():
        for action in parser._actions:
            for name in action.option_strings:
                if name.startswith("--") and not name.startswith("--no-"):
                    yield parser.prog, name, declared(action.help or "")


def declared(help_text: str) -> str:
    """The help as declared, less what a command adds: the ``(default: ...)``, a note in trailing
    parentheses, a sweep axis's ``: one or more values ...``."""
    while True:
        cut = re.sub(r"\s*\((?:[^()]|\([^()]*\))*\)\s*$", "", help_text)
        if cut == help_text:
            break
        help_text = cut
    return help_text.removesuffix(AXIS_NOTE).strip()


def test_one_setting_has_one_name_in_every_command():
    names_by_help = defaultdict(set)
    for _, name, help_text in _flags():
        names_by_help[help_text].add(name)
    doubled = {help_text: sorted(names) for help_text, names in names_by_help.items() if len(names) > 1}
    assert not doubled, doubled


def test_one_name_means_one_setting_in_every_command():
    helps_by_name = defaultdict(dict)
    for command, name, help_text in _flags():
        helps_by_name[name].setdefault(help_text, []).append(command)
    differing = {
        name: helps for name, helps in helps_by_name.items() if len(helps) > 1 and name not in PER_COMMAND
    }
    assert not differing, "\n".join(f"{name}: {helps}" for name, helps in differing.items())


def test_the_commands_that_evaluate_share_the_evaluation_flags():
    flags_of = defaultdict(set)
    for command, name, _ in _flags():
        flags_of[command].add(name)
    for command in ("python -m harness.experiment", "python -m harness.evaluate"):
        assert {"--eval-limit", "--eval-template", "--model"} <= flags_of[command], command
    assert {"--results-dir", "--leaderboard-dir"} <= flags_of["python -m harness.leaderboard"]
    assert "--limit" not in set().union(*flags_of.values())


def test_every_flag_has_a_help_and_one_name():
    for parser in _parsers():
        for action in parser._actions:
            long_names = [
                n for n in action.option_strings if n.startswith("--") and not n.startswith("--no-")
            ]
            assert action.help, (parser.prog, action.option_strings)
            assert len(long_names) <= 1, (parser.prog, long_names)  # no aliases: one name per setting


def test_the_names_a_setting_had_before_are_gone():
    # Renamed in issue 31, each to the name the other commands give the same setting.
    gone = {
        "python -m harness.evaluate": {"--limit", "--prompt-template"},
        "python -m harness.selfgen": {"--limit", "--prompt-template"},
        "python -m harness.lmeval": {"--limit"},
        "python -m harness.leaderboard": {"--results", "--out"},
        "python -m harness.bench": {"--out"},
    }
    flags_of = defaultdict(set)
    for command, name, _ in _flags():
        flags_of[command].add(name)
    for command, names in gone.items():
        assert not names & flags_of[command], (command, names & flags_of[command])


FOLDER_FLAGS = [
    ("harness.train", ["--steps", "1"], "--output-dir"),
    ("harness.evaluate", [], "--samples-dir"),
    ("harness.experiment", [], "--runs-dir"),
    ("harness.experiment", [], "--results-dir"),
    ("harness.experiment", [], "--leaderboard-dir"),
    ("harness.ablate", ["--lr", "1e-3"], "--runs-dir"),
    ("harness.continuum", [], "--leaderboard-dir"),
    ("harness.selfgen", ["--train-limit", "2"], "--output-dir"),
    ("harness.lmeval", ["--task", "math-words"], "--out"),
    ("harness.leaderboard", [], "--leaderboard-dir"),
    ("harness.bench", [], "--leaderboard-dir"),
]


@pytest.mark.parametrize(("command", "argv", "flag"), FOLDER_FLAGS)
def test_a_folder_that_cannot_be_made_is_one_line_naming_its_flag(command, argv, flag, tmp_path, capsys):
    # A file where the folder would go: refused before any model loads or anything is measured.
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("kept\n")
    main = importlib.import_module(
        command if command != "harness.bench" else "harness.bench.performance"
    ).main
    assert main([*argv, flag, str(in_the_way / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{flag} cannot be made: {in_the_way} is not a folder") and "\n" not in err
    assert in_the_way.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_folder_flag_is_checked_without_making_anything(tmp_path):
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    for path in (dangling, dangling / "under"):  # mkdir would fail on both
        assert makeable_folder(path) == f"cannot be made: {dangling} is not a folder"
    assert makeable_folder("relative/new") is None  # from the working directory
    locked = tmp_path / "locked"
    locked.mkdir()
    assert makeable_folder(locked / "new" / "deeper") is None and not (locked / "new").exists()
    locked.chmod(0o500)
    try:
        problem = makeable_folder(locked / "new")
        # root may write anywhere: then the check agrees with what the system allows
        assert problem == (
            None if os.access(locked, os.W_OK) else f"cannot be written: {locked} is not writable"
        )
    finally:
        locked.chmod(0o700)
