"""The whole pipeline through its command line, as `nox -s train-math` runs it, made tiny."""

import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from harness import plan
from harness.ablate import parse_sweep
from harness.config import flag
from harness.errors import ConfigError, HarnessError
from harness.experiment import parse_experiment
from harness.resolve import ood_task_names
from tasks.math_words import MathWords

ROOT = Path(__file__).resolve().parents[1]


def test_explicit_flags_win_over_the_preset():
    experiment = parse_experiment(["--preset", "paper-math", "--lr", "1e-4"])
    assert experiment.train.lr == 1e-4
    assert experiment.train.batch_size == 256  # from the preset
    assert experiment.train.max_length == 2048


def test_paper_code_preset_is_the_papers_code_recipe():
    train = parse_experiment(["--preset", "paper-code", "--task", "code-lists"]).train
    assert (train.lr, train.batch_size, train.epochs, train.warmup_ratio) == (5e-5, 16, 1.0, 0.05)


def test_seeds_default_to_the_presets_and_the_training_config_holds_the_first():
    assert parse_experiment([]).config.seeds == [0]
    experiment = parse_experiment(["--seeds", "3", "1"])
    assert experiment.config.seeds == [3, 1] and experiment.train.seed == 3


def test_a_seed_that_is_not_a_whole_number_is_a_one_line_error(capsys):
    from harness.experiment import main

    with pytest.raises(ConfigError, match="argument --seeds: --seeds takes whole numbers; 'x' is not one"):
        parse_experiment(["--seeds", "0", "x"])
    assert main(["--seeds", "0", "x"]) == 1  # argparse's refusal and the harness's read the same
    err = capsys.readouterr().err.strip()
    assert err == "error: argument --seeds: --seeds takes whole numbers; 'x' is not one (see --help)"


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="argument --methods: invalid choice: 'grpo'"):
        parse_experiment(["--methods", "base", "grpo"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--eval-limit", "0"], "--eval-limit must be >= 1"),
        (["--nproc-per-node", "0"], "--nproc-per-node must be >= 1"),
        (["--temperature", "-1"], "--temperature must be >= 0"),
        (["--seeds", "1", "2", "1"], "--seeds 1 2 1: seed 1 is given twice"),
        (["--seeds", "-2"], "--seeds must be >= 0, got -2"),
    ],
)
def test_bad_experiment_flags_name_the_flag(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_experiment(argv)


@pytest.mark.slow
def test_cli_end_to_end_writes_records_and_leaderboard(tmp_path):
    command = [
        sys.executable,
        "-m",
        "harness.experiment",
        "--task",
        "math-words",
        "--steps",
        "2",
        "--train-limit",
        "64",
        "--eval-limit",
        "3",
        "--max-new-tokens",
        "48",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--results-dir",
        str(tmp_path / "results"),
        "--leaderboard-dir",
        str(tmp_path / "leaderboards"),
        "--no-progress",
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "leaderboards:" in completed.stdout

    records = {}
    for path in sorted((tmp_path / "results").rglob("*.json")):
        record = json.loads(path.read_text())
        records[record["method"]] = record
    assert set(records) == {"base", "sft", "dft"}
    sft, dft = records["sft"], records["dft"]
    # Identical data, seed and hyperparameters: only the objective differs.
    assert {k: v for k, v in sft["hparams"].items() if k != "objective"} == {
        k: v for k, v in dft["hparams"].items() if k != "objective"
    }
    assert (sft["hparams"]["objective"], dft["hparams"]["objective"]) == ("sft", "dft")
    assert sft["hparams"]["steps"] == 2 and sft["data"]["train_examples"] == 64
    for record in records.values():
        assert list(record["scores"]) == MathWords().eval_splits
        for score in record["scores"].values():
            assert score["n"] == 3 and 0.0 <= score["value"] <= 1.0
        assert record["provenance"]["packages"]["torch"]
        samples = Path(record["run_dir"]) / "samples" / "test.jsonl"
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        assert len(rows) == 3 and {"prompt", "completion", "extracted", "score"} <= set(rows[0])

    board = (tmp_path / "leaderboards" / "math.md").read_text()
    assert "do not edit by hand" in board
    for row in ("| base |", "| SFT |", "| DFT |", "| DFT − SFT |"):
        assert row in board.replace("**", "")


def test_cli_bad_model_is_one_line_error(tmp_path, capsys):
    from harness.experiment import main  # in this process: the end-to-end tests start the interpreter

    assert main(["--model", str(tmp_path / "missing"), "--results-dir", str(tmp_path / "results")]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --model") and "missing" in lines[0]
    assert not (tmp_path / "results").exists()


def test_cli_unknown_task_suggests_a_name(capsys):
    from harness.experiment import main  # in this process: the end-to-end tests start the interpreter

    assert main(["--task", "math-word"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: --task") and "did you mean 'math-words'" in err and len(err.splitlines()) == 1
    )


def test_ood_tasks_default_to_the_tasks_own_and_typos_fail_early():
    assert ood_task_names(parse_experiment(["--task", "code-lists"]).config) == ["humaneval"]
    assert ood_task_names(parse_experiment(["--task", "code-lists", "--ood-tasks"]).config) == []
    assert ood_task_names(parse_experiment(["--task", "math-words"]).config) == []
    with pytest.raises(ConfigError, match="--ood-tasks unknown task 'humaneva'; did you mean 'humaneval'"):
        parse_experiment(["--task", "code-lists", "--ood-tasks", "humaneva"])


def test_the_domain_picks_the_embedded_model_that_can_do_the_task():
    # --task visual-math alone trains and evaluates the tiny VLM (it used to pick the text model).
    assert parse_experiment(["--task", "visual-math"]).train.model == "tiny-vl"
    assert parse_experiment(["--task", "code-lists"]).train.model == "tiny"
    assert parse_experiment(["--task", "visual-math", "--model", "tiny"]).train.model == "tiny"


def test_micro_batch_size_is_the_most_that_fits_here_too():
    train = parse_experiment(["--batch-size", "48", "--micro-batch-size", "32"]).train
    assert (train.batch_size, train.micro_batch_size) == (48, 24)
    train = parse_experiment(
        ["--batch-size", "48", "--micro-batch-size", "32", "--nproc-per-node", "4"]
    ).train
    assert train.micro_batch_size == 12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0"], "--lr must be a positive number, got 0.0"),
        (["--lr", "nan"], "--lr must be a positive number, got nan"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--batch-size", "6", "--nproc-per-node", "4"], "--batch-size 6 does not split evenly over 4 ranks"),
        (["--warmup-ratio", "1.5"], "--warmup-ratio must be in [0, 1], got 1.5"),
        (["--adam-beta2", "1"], "--adam-beta2 must be in [0, 1), got 1.0"),
        (["--dft-alpha", "2"], "--dft-alpha must be in [0, 1], got 2.0"),
        (["--model", "no/such/folder/x"], "--model no/such/folder/x: no such model folder"),
        (["--task", "visual-mat"], "--task unknown task 'visual-mat'; did you mean 'visual-math'"),
        (["--task", "humaneval"], "--task humaneval: task 'humaneval' has no train split"),
        (["--model", "tiny", "--task", "mathwords"], "--task unknown task 'mathwords'"),
        (
            ["--batch-size", "8", "--train-limit", "4"],
            "--batch-size 8 exceeds --train-limit 4: one step takes 8",
        ),
    ],
)
def test_bad_values_fail_before_anything_loads_naming_the_flag(argv, message):
    with pytest.raises(HarnessError, match=re.escape(message)):
        parse_experiment(argv)


def test_a_batch_larger_than_the_training_file_is_refused_before_the_base_is_evaluated(tmp_path):
    from tests.conftest import write_jsonl

    data = tmp_path / "three.jsonl"
    row = {
        "prompt": [{"role": "user", "content": "What is 1 + 1?"}],
        "completion": [{"role": "assistant", "content": "2"}],
    }
    write_jsonl(data, [row] * 3)
    with pytest.raises(
        ConfigError, match=f"^--batch-size 4 exceeds the 3 training rows of {re.escape(str(data))}$"
    ):
        parse_experiment(["--train-data", str(data), "--batch-size", "4"])
    with pytest.raises(
        ConfigError, match=r"exceeds the 1 training rows of .*three\.jsonl past --train-offset 2$"
    ):
        parse_experiment(["--train-data", str(data), "--batch-size", "2", "--train-offset", "2"])
    assert parse_experiment(["--train-data", str(data), "--batch-size", "3"]).train.batch_size == 3
    # Nothing trains: the base alone reads the rows for its histogram, whatever the batch.
    assert parse_experiment(["--methods", "base", "--train-data", str(data), "--batch-size", "8"])


@pytest.mark.slow
def test_code_cli_end_to_end_scores_humaneval_as_ood_and_keeps_verdicts(tmp_path):
    from harness.experiment import main  # in this process: the math test above starts the interpreter

    argv = ["--task", "code-lists", "--steps", "2"]
    argv += ["--train-limit", "64", "--eval-limit", "2", "--max-new-tokens", "32", "--no-progress"]
    for name in ("runs", "results", "leaderboard"):
        argv += [f"--{name}-dir", str(tmp_path / name)]
    assert main(argv) == 0
    records = [json.loads(path.read_text()) for path in (tmp_path / "results").rglob("*.json")]
    assert sorted(r["method"] for r in records) == ["base", "dft", "sft"]
    for record in records:
        assert record["domain"] == "code"
        roles = {split: score["role"] for split, score in record["scores"].items()}
        assert roles == {
            "test": "test",
            "ood-compose": "ood",
            "ood-constants": "ood",
            "humaneval": "ood",
        }
        for score in record["scores"].values():
            assert sum(score["verdicts"].values()) == 2 and set(score["pass_at"]) == {"1"}
        rows = (Path(record["run_dir"]) / "samples" / "humaneval" / "test.jsonl").read_text().splitlines()
        assert {"verdict", "stderr", "extracted"} <= set(json.loads(rows[0]))
    assert "| humaneval (ood) |" in (tmp_path / "leaderboard" / "code.md").read_text().replace("`", "")


def test_each_benchmark_is_sampled_by_its_own_protocol_unless_flags_say_otherwise():
    from harness.plan import evaluation_of

    experiment = parse_experiment(["--ood-tasks", "math-500", "humaneval"])
    spec = evaluation_of(experiment, "sft")
    assert spec["sampling"]["temperature"] == 0.0 and spec["sampling"]["num_samples"] == 1  # math-words
    # math-500 keeps the paper's Average@16; humaneval is greedy like the task: not listed.
    assert list(spec["ood_sampling"]) == ["math-500"]
    assert spec["ood_sampling"]["math-500"] == {
        "temperature": 1.0, "top_p": 1.0, "num_samples": 16, "max_new_tokens": None,
        "gen_batch_size": 64, "sample_seed": 0,
    }  # fmt: skip
    forced = evaluation_of(parse_experiment(["--ood-tasks", "math-500", "--temperature", "0"]), "sft")
    assert "ood_sampling" not in forced  # a flag given applies to every task
    with pytest.raises(ConfigError, match="--num-samples 4 needs --temperature > 0"):
        parse_experiment(["--num-samples", "4"])  # math-words is greedy: refused before any work
    numina = evaluation_of(
        parse_experiment(["--task", "numina-math-cot", "--eval-template", "qwen-boxed"]), "base"
    )
    # A training task scored only on benchmarks is sampled by their protocol: nothing differs.
    assert numina["sampling"]["num_samples"] == 16 and "ood_sampling" not in numina
    assert numina["prompt_template"] == "qwen-boxed"


@pytest.mark.slow
def test_a_benchmark_is_scored_by_its_protocol_with_the_papers_prompt(tmp_path, data_dir):
    """The base model on math-words with GSM8K (a local copy) as an OOD benchmark, asked with the
    paper's qwen-boxed prompt: GSM8K gets its 16 samples at temperature 1.0, math-words stays greedy,
    and the record and the page say so."""
    from conftest import write_jsonl

    from harness.experiment import main

    rows = [
        {"question": f"What is {k} + {k}?", "answer": f"{k} + {k} = {2 * k}\n#### {2 * k}"} for k in (2, 3)
    ]
    write_jsonl(data_dir / "gsm8k.jsonl", rows)
    folders = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    argv = ["--methods", "base", "--ood-tasks", "gsm8k", "--eval-template", "qwen-boxed", "--eval-limit", "2",
            "--max-new-tokens", "8", "--prob-rows", "0", "--leaderboard-dir", str(tmp_path / "boards"), *folders]  # fmt: skip
    assert main(argv) == 0
    (path,) = (tmp_path / "results").rglob("*.json")
    record = json.loads(path.read_text())
    gsm8k = record["scores"]["gsm8k"]
    assert (gsm8k["samples_per_example"], gsm8k["decoding"], gsm8k["title"]) == (
        16,
        "temperature=1.0, top_p=1.0",
        "GSM8K",
    )
    assert (
        record["scores"]["test"]["decoding"] == "greedy"
        and record["scores"]["test"]["samples_per_example"] == 1
    )
    assert record["evaluation"]["prompt_template"] == "qwen-boxed"
    samples = [
        json.loads(line) for line in (Path(record["run_dir"]) / "samples" / "gsm8k" / "test.jsonl").open()
    ]
    assert len(samples) == 32 and samples[0]["prompt"].startswith("<|im_start|>system\nYou are a helpful")
    page = (tmp_path / "boards" / "math.md").read_text()
    assert "prompt template qwen-boxed" in page


@pytest.mark.slow
def test_a_row_of_the_papers_math_table_end_to_end_on_the_tiny_model(tmp_path, data_dir):
    """NuminaMath-CoT training rows and the five math benchmarks as local copies in their real
    schemas: the experiment trains on the first, scores on the others by their protocol (here cut to
    2 samples), and the page is the paper's table."""
    from conftest import write_jsonl

    from harness.experiment import main

    write_jsonl(data_dir / "numina-math-cot.jsonl",
                [{"source": "synthetic_math", "problem": f"What is {k} + 1?", "solution": f"$\\boxed{{{k + 1}}}$"}
                 for k in range(8)])  # fmt: skip
    question = {"problem": "What is 1 + 1?", "answer": "2"}
    for name, row in {"math-500": question | {"unique_id": "test/x/1.json"}, "minerva-math": question,
                      "aime24": question, "amc23": {"question": "What is 1 + 1?", "answer": 2.0},
                      "olympiadbench": {"question": "1 + 1?", "final_answer": ["$2$"]}}.items():  # fmt: skip
        write_jsonl(data_dir / f"{name}.jsonl", [row])
    argv = ["--task", "numina-math-cot", "--steps", "1", "--batch-size", "4", "--eval-limit", "1",
            "--num-samples", "2", "--max-new-tokens", "4", "--prob-rows", "0", "--no-progress",
            "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"),
            "--leaderboard-dir", str(tmp_path / "boards")]  # fmt: skip
    assert main(argv) == 0
    page = (tmp_path / "boards" / "math.md").read_text()
    assert "| model | seeds | Math500 | Minerva Math | Olympiad Bench | AIME24 | AMC23 | Avg. |" in page
    for row in ("| base |", "| SFT |", "| DFT |", "| DFT − SFT |"):
        assert row in page.replace("**", "")
    assert "2 samples per example, temperature=1.0, top_p=1.0." in page


def test_every_objective_is_a_method_that_differs_from_sft_only_in_its_objective(tmp_path):
    # What the end-to-end test above checks for SFT and DFT, for every objective, without training.
    from harness.config import OBJECTIVE_PARAMS, OBJECTIVES

    given = {"dft_min_weight": 0.1, "q": 0.5, "prob_threshold": 0.2, "eaft_top_k": 5, "asft_lambda": 0.1}
    given |= {"iwsft_temperature": 2.0, "dpo_beta": 0.5}
    flags = [arg for name, value in given.items() for arg in (flag(name), str(value))]
    # A selfgen folder: rows for the objectives on rows, pairs for DPO.
    prompt = [{"role": "user", "content": "1 + 1?"}]
    answer = [{"role": "assistant", "content": "\\boxed{2}"}]
    (tmp_path / "rows.jsonl").write_text(json.dumps({"prompt": prompt, "completion": answer}) + "\n")
    pair = {"prompt": prompt, "chosen": answer, "rejected": [{"role": "assistant", "content": "3"}]}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    (tmp_path / "selfgen.json").write_text("{}")  # finished (parsing reads no further)
    methods = [
        "--methods",
        "base",
        *OBJECTIVES,
        "--train-data",
        str(tmp_path),
        "--batch-size",
        "1",
    ]
    run = parse_experiment([*methods, *flags])
    configs = {m: plan.method_config(run, m, tmp_path / m) for m in OBJECTIVES}
    for method, config in configs.items():
        assert config.objective == method
        # Each parameter goes to the objectives that read it; every other one gets the paper's value.
        for name, param in OBJECTIVE_PARAMS.items():
            expected = given.get(name, param.default) if method in param.owners else param.default
            assert getattr(config, name) == expected
        mine = {"objective", "output_dir", *OBJECTIVE_PARAMS}
        same = {k: v for k, v in asdict(config).items() if k not in mine}
        assert same == {k: v for k, v in asdict(configs["sft"]).items() if k not in mine}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--q", "0.5"],
            r"--q 0.5 applies to objective q-family only, and none is trained here \(sft, dft\)",
        ),
        (["--methods", "sft", "eaft", "--dft-alpha", "0.5"], "--dft-alpha 0.5 applies to objective dft only"),
        (["--methods", "gft", "--prob-threshold", "1.5"], r"--prob-threshold must be in \(0, 1\), got 1.5"),
        (["--methods", "eaft", "--eaft-top-k", "1"], "--eaft-top-k must be >= 2, got 1"),
        (["--methods", "asft", "--asft-lambda", "-1"], "--asft-lambda must be >= 0, got -1.0"),
        (
            ["--methods", "sft", "asft", "--sharding", "fsdp", "--nproc-per-node", "2"],
            "--objective asft with --sharding fsdp: its frozen starting model is not sharded",
        ),
        (["--methods", "psft", "--lora-rank", "4"], "--objective psft with --lora-rank: its old policy"),
    ],
)
def test_an_objective_parameter_nobody_reads_or_out_of_range_is_one_line(argv, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        parse_experiment(argv)


def test_a_sweep_refuses_a_parameter_its_methods_do_not_read_and_takes_one_they_do():
    with pytest.raises(ValueError, match="^--eaft-alpha 2 applies to objective eaft only"):
        parse_sweep(["--lr", "1e-3", "--eaft-alpha", "2"])
    sweep = parse_sweep(["--lr", "1e-3", "--methods", "sft", "dft", "--dft-min-weight", "0.1"])
    assert sweep.experiment.train.dft_min_weight == 0.1
    with pytest.raises(
        ValueError, match="^--q 2 applies to objective q-family only, and none is trained here \\(none\\)"
    ):
        parse_experiment(["--methods", "base", "--q", "2"])


def test_psft_checkpoints_fall_where_a_psft_batch_starts():
    with pytest.raises(ValueError, match="^--save-every 5 with --objective psft: a checkpoint must fall"):
        parse_experiment(["--methods", "sft", "psft", "--save-every", "5"])
    parse_experiment(["--methods", "sft", "psft", "--save-every", "16"])  # 2 PSFT batches of 8 steps
