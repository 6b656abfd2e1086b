"""A command answers at once: ``--help`` and a mistyped flag of every command load only the settings
(the standard library and harness.config), never torch, transformers, the task registry, the grading
or vision stacks; a mistyped task name loads the registry (its did-you-mean) and still none of the
stacks. Held to the modules they load, not to a time (a loaded CI machine varies; the modules do
not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test starts a fresh interpreter (about half a second)
ROOT = Path(__file__).resolve().parents[1]
# What a typo must not pay for: each is seconds of CPU (torchvision's model zoo alone was 25 s).
HEAVY = (
    "torch", "transformers", "torchvision", "tasks", "math_verify", "sympy", "datasets", "scipy",
    "matplotlib", "PIL", "lm_eval", "peft", "numpy",
)  # fmt: skip
# Every command, with a flag that argparse refuses (a bad value or choice).
COMMANDS = {
    "harness.train": ["--lr", "abc"],
    "harness.experiment": ["--eval-template", "nope"],
    "harness.ablate": ["--batch-size", "1.5"],
    "harness.continuum": ["--noise", "x"],
    "harness.evaluate": ["--eval-template", "nope"],
    "harness.selfgen": ["--train-limit", "x"],
    "harness.token_probs": ["--rows", "x"],
    "harness.lmeval": ["--eval-limit", "x"],
    "harness.leaderboard": ["--no-such-flag"],
    "harness.replicates": ["--no-such-flag"],
}
# Every command that takes --task.
TASK_COMMANDS = sorted(set(COMMANDS) - {"harness.leaderboard", "harness.lmeval"})
PROBE = """
import json, runpy, sys
module, argvs, loaded = sys.argv[1], json.loads(sys.argv[2]), {}
for argv in argvs:
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__")
    except SystemExit as done:
        loaded[argv[0]] = done.code
print(json.dumps({"codes": loaded, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def probe(command: str, *argvs: list[str]) -> tuple[dict, str]:
    """Run ``command`` with each of ``argvs`` in one fresh process: the exit codes by first flag and
    the top-level modules loaded, and what it printed on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, command, json.dumps(argvs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_and_a_bad_flag_load_nothing_heavy(command):
    report, stderr = probe(command, ["--help"], COMMANDS[command])
    assert report["codes"] == {"--help": 0, COMMANDS[command][0]: 1}, stderr[-2000:]
    assert "error: " in stderr and len(stderr.strip().splitlines()) == 1, stderr[-2000:]
    assert not sorted(set(report["modules"]) & set(HEAVY)), command


@pytest.mark.parametrize("command", TASK_COMMANDS)
def test_a_mistyped_task_is_named_before_any_stack_loads(command):
    report, stderr = probe(command, ["--task", "math-word"])
    assert report["codes"] == {"--task": 1}, stderr[-2000:]
    assert stderr.startswith("error: --task unknown task 'math-word'; did you mean 'math-words'?"), stderr[
        -2000:
    ]
    assert len(stderr.strip().splitlines()) == 1
    assert "tasks" in report["modules"]  # the registry answered
    assert not sorted(set(report["modules"]) & (set(HEAVY) - {"tasks"})), command
