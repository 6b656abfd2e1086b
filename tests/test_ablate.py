"""Sweeps: grid expansion, bad input, per-cell commands, resuming, and two sweeps at once."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.ablate import main, parse_args, plan
from harness.errors import ConfigError
from harness.results import load_records

ROOT = Path(__file__).resolve().parents[1]
# Cells of a few seconds each: 2 steps of 8 rows, 1 example per split, 8 new tokens.
TINY = [
    "--steps", "2", "--train-limit", "16", "--batch-size", "8", "--micro-batch-size", "4",
    "--eval-limit", "1", "--max-new-tokens", "8", "--prob-rows", "2", "--no-progress",
]  # fmt: skip


def folders(tmp_path: Path) -> list[str]:
    return [
        *("--results-dir", str(tmp_path / "results")),
        *("--runs-dir", str(tmp_path / "runs")),
        *("--leaderboard-dir", str(tmp_path / "leaderboards")),
    ]


def test_grid_expands_in_a_fixed_order_base_first():
    sweep = parse_args(
        ["--lr", "1e-3", "2e-3", "--batch-size", "16", "48", "--methods", "base", "dft", "sft"]
    )
    cells = plan(sweep)
    assert [(c.index, c.method, c.lr, c.batch_size) for c in cells] == [
        (0, "base", None, None),
        (1, "dft", 1e-3, 16),
        (2, "dft", 1e-3, 48),
        (3, "dft", 2e-3, 16),
        (4, "dft", 2e-3, 48),
        (5, "sft", 1e-3, 16),
        (6, "sft", 1e-3, 48),
        (7, "sft", 2e-3, 16),
        (8, "sft", 2e-3, 48),
    ]
    # The laptop preset fits 32 examples per pass: batch 48 runs as 24 x 2 accumulation steps.
    assert [c.experiment.train.micro_batch_size for c in cells[1:5]] == [16, 24, 16, 24]
    for cell in cells[1:]:
        train = asdict(cell.experiment.train)
        assert (train["lr"], train["batch_size"]) == (cell.lr, cell.batch_size)
        assert cell.experiment.config.methods == [cell.method] and not cell.experiment.config.redo
        assert cell.experiment.config.seeds == [cell.seed] == [0]
        # Everything else is shared by every cell.
        shared = {k: v for k, v in train.items() if k not in ("lr", "batch_size", "micro_batch_size")}
        assert shared == {
            k: v
            for k, v in asdict(cells[1].experiment.train).items()
            if k not in ("lr", "batch_size", "micro_batch_size")
        }


def test_seeds_multiply_the_trained_cells_and_each_cell_trains_one_seed():
    cells = plan(parse_args(["--lr", "1e-3", "2e-3", "--methods", "base", "sft", "--seeds", "3", "4"]))
    assert [(c.method, c.lr, c.seed) for c in cells] == [
        ("base", None, None),
        ("sft", 1e-3, 3),
        ("sft", 1e-3, 4),
        ("sft", 2e-3, 3),
        ("sft", 2e-3, 4),
    ]
    assert [c.experiment.train.seed for c in cells[1:]] == [3, 4, 3, 4]
    assert [c.experiment.config.seeds for c in cells[1:3]] == [[3], [4]]


def test_repeated_values_collapse_and_omitted_axes_take_the_preset():
    sweep = parse_args(["--lr", "1e-3", "0.001", "--methods", "sft", "dft", "--preset", "paper-math"])
    assert sweep.lrs == [1e-3] and sweep.batch_sizes == [256] and sweep.objectives == ["sft", "dft"]
    assert [c.method for c in plan(sweep)] == ["sft", "dft"]


@pytest.mark.parametrize(
    ("argv", "task", "model"),
    [
        (["--domain", "math"], "math-words", "tiny"),
        (["--domain", "code"], "code-lists", "tiny"),
        (["--domain", "vlm"], "visual-math", "tiny-vl"),
        (["--task", "visual-math", "--model", "some/checkpoint"], "visual-math", "some/checkpoint"),
    ],
)
def test_domain_picks_its_training_task_and_an_embedded_model_that_can_do_it(argv, task, model):
    experiment = parse_args(argv).experiment
    assert (experiment.config.task, experiment.train.task, experiment.train.model) == (task, task, model)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr"], "argument --lr: expected at least one argument"),
        (["--batch-size"], "argument --batch-size: expected at least one argument"),
        (["--lr", "1e-3", "fast"], "argument --lr: --lr takes numbers; 'fast' is not one"),
        (["--batch-size", "1.5"], "--batch-size takes whole numbers; '1.5' is not one"),
        (["--methods", "grpo"], "argument --methods: invalid choice: 'grpo'"),
        (
            ["--methods", "sft,dft"],
            "argument --methods: --methods takes its values separated by spaces: --methods sft dft",
        ),
        (["--method", "sft"], "--method is gone: give the methods with --methods, space-separated"),
        (["--no-base"], "--no-base is gone: the base is a method: leave base out of --methods"),
        (["--seeds", "0", "1.5"], "argument --seeds: --seeds takes whole numbers; '1.5' is not one"),
    ],
)
def test_bad_grid_flags_are_one_line_errors_naming_the_flag(argv, message, capsys):
    # argparse's refusals read as the harness's own: one line, exit status 1 (harness.errors.command).
    with pytest.raises(ConfigError) as refused:
        parse_args(argv)
    assert message in str(refused.value) and str(refused.value).endswith("(see --help)")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "2", "--nproc-per-node", "4"], "--batch-size 2 is smaller than the 4 ranks"),
        (["--batch-size", "6", "--nproc-per-node", "4"], "--batch-size 6 does not split evenly over 4 ranks"),
        (["--cell", "9"], "--cell 9: the plan has cells 0 to 2"),
        (["--task", "math-word"], "did you mean 'math-words'"),
        (["--eval-every", "-1"], "--eval-every must be >= 0"),
        (["--model", "no/such/folder"], "--model no/such/folder: no such model folder"),
        (["--lr", "nan"], "--lr must be a positive number, got nan"),
        (["--lr", "1e-3", "-0.001"], "--lr must be a positive number, got -0.001"),
        (["--batch-size", "16", "0"], "--batch-size must be >= 1, got 0"),
        (["--domain", "math", "--task", "code-lists"], "--domain and --task: give one of them"),
        (["--domain", "chemistry"], "--domain no trainable task in domain 'chemistry'"),
        (["--seeds", "0", "1", "0"], "--seeds 0 1 0: seed 0 is given twice"),
        (["--seeds", "-1"], "--seeds must be >= 0, got -1"),
        (["--train-limit", "4", "--batch-size", "2", "8"], "--batch-size 8 exceeds --train-limit 4"),
        (["--task", "humaneval"], "--task humaneval: task 'humaneval' has no train split"),
    ],
)
def test_impossible_sweeps_fail_before_any_cell_runs(argv, message, tmp_path, capsys):
    assert main([*argv, *folders(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


def test_a_missing_or_malformed_training_file_fails_before_the_plan(tmp_path, capsys):
    bad = tmp_path / "rows.jsonl"
    row = '{"prompt": [{"role": "user", "content": "1+1?"}], "completion": [{"role": "assistant", "content": "2"}]}'
    bad.write_text(row + '\n{"prompt": 3}\n')
    for data, message in [
        (tmp_path / "missing.jsonl", "missing.jsonl: no such file"),
        (bad, "rows.jsonl line 2"),
    ]:
        assert main(["--train-data", str(data), "--dry-run", *folders(tmp_path)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    # Every cell's batch against the file's rows, whatever the order the batches are given in.
    three = tmp_path / "three.jsonl"
    three.write_text((row + "\n") * 3)
    for batches in (["2", "4"], ["4", "2"]):
        assert (
            main(["--train-data", str(three), "--batch-size", *batches, "--dry-run", *folders(tmp_path)]) == 1
        )
        assert f"--batch-size 4 exceeds the 3 training rows of {three}" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_each_printed_command_runs_exactly_its_cell(capsys):
    argv = ["--lr", "1e-3", "3e-3", "--batch-size", "8", "16", "--methods", "base", "dft", "--print-commands"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    cells = plan(parse_args(argv))
    assert len(printed) == len(cells) == 5
    for line, cell in zip(printed, cells):
        words = shlex.split(line)
        assert words[:3] == [sys.executable, "-m", "harness.ablate"] and "--print-commands" not in words
        again = parse_args(words[3:])
        assert again.grid.cell == cell.index
        chosen = plan(again)[again.grid.cell]
        assert (chosen.method, chosen.lr, chosen.batch_size) == (cell.method, cell.lr, cell.batch_size)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    argv = ["--lr", "1e-3", "2e-3", "--batch-size", "16", "48", "--dry-run", *folders(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        "sweep of math-words from tiny: 2 lr x 2 batch x 2 method = 8 trained cells + base"
    )
    rows = [line.split() for line in out[2:]]
    assert [row[1] for row in rows] == ["base"] + ["sft"] * 4 + ["dft"] * 4
    assert all(row[-2] == "todo" for row in rows)
    assert rows[2][4:8] == ["0", "24", "x", "2"]  # seed 0; batch 48 = 24 x 2 accumulation x 1 rank
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


def sft_record(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "results").rglob("sft-*.json")
    return path


@pytest.mark.slow
def test_rerun_skips_finished_cells_and_redoes_broken_or_half_done_ones(tmp_path, capsys):
    argv = [*TINY, "--lr", "1e-3", "--methods", "sft", "--save-every", "1", *folders(tmp_path)]
    assert main(argv) == 0
    record = sft_record(tmp_path)
    first = record.read_bytes()
    saved = json.loads(first)
    assert saved["data"]["gradient_accumulation"] == 2 and saved["hparams"]["micro_batch_size"] == 4
    assert (tmp_path / "leaderboards" / "README.md").exists()
    capsys.readouterr()

    assert main(argv) == 0  # finished: matched by configuration and evaluation, left alone
    assert "finished before" in capsys.readouterr().err
    assert record.read_bytes() == first

    record.write_bytes(first[:200])  # a truncated record is not replaced without --redo
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {record} holds a record of this configuration that differs: malformed record" in err
    assert record.read_bytes() == first[:200]
    assert main([*argv, "--redo"]) == 0
    assert f"--redo replaces the malformed {record}" in capsys.readouterr().err
    assert json.loads(record.read_text())["scores"] == saved["scores"]  # trained again, same numbers

    # Died mid-training: no record, no final model, one checkpoint. It continues from there.
    run_dir = Path(saved["run_dir"])
    record.unlink()
    (run_dir / "train_summary.json").unlink()
    for folder in ("model", "checkpoint-2"):
        if (run_dir / folder).exists():
            subprocess.run(["rm", "-rf", str(run_dir / folder)], check=True)
    assert main([*argv, "--dry-run"]) == 0
    assert " partial " in capsys.readouterr().out
    assert main(argv) == 0
    assert f"continuing from {run_dir / 'checkpoint-1'}" in capsys.readouterr().err
    steps = [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and sft_record(tmp_path).exists()

    # Another evaluation of a cell that has a record: refused before any cell runs, then --redo.
    done = sft_record(tmp_path).read_bytes()
    assert main([*argv, "--max-new-tokens", "9"]) == 1
    assert "evaluation.sampling {" in capsys.readouterr().err and sft_record(tmp_path).read_bytes() == done
    assert main([*argv, "--max-new-tokens", "9", "--redo"]) == 0
    assert "--redo replaced" in capsys.readouterr().err


@pytest.mark.slow
def test_two_sweeps_sharing_a_results_folder_lose_and_repeat_nothing(tmp_path):
    argv = [*TINY, "--lr", "1e-3", "--methods", "sft", "dft", *folders(tmp_path)]
    command = [sys.executable, "-m", "harness.ablate", *argv]
    runs = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-2000:]
    errs = "".join(err for _, err in outputs)
    for method in ("sft", "dft"):  # each cell trained and evaluated by exactly one of the two
        assert errs.count(f"[{method} seed 0] evaluating") == 1
    records = load_records(tmp_path / "results")
    assert sorted(r["method"] for r in records) == ["dft", "sft"]
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    page = (tmp_path / "leaderboards" / "math.md").read_text()
    assert "from 2 records" in page and "| DFT − SFT |" in page.replace("**", "")
