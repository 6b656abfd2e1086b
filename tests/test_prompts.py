"""The paper's evaluation prompts (--prompt-template, --eval-template): the raw templates as the
Qwen2.5-Math evaluation writes them, training rows made with one, where each template applies, and
how the choice is recorded without changing what older records are."""

from __future__ import annotations

import json

import pytest

import tasks
from harness.checkpoint import check_resumable
from harness.config import IGNORE_INDEX, LATER_DEFAULTS, PROMPT_TEMPLATES, Evaluation, TrainConfig
from harness.data.rows import check_row, training_rows
from harness.data.text import encode
from harness.errors import ConfigError, DataError
from harness.evaluate import parse_evaluate
from harness.experiment import parse_experiment
from harness.identity import config_id, record_path
from harness.plan import evaluation_of, hparams_of, plan_method
from harness.results import conflict, make_record, read_record, write_record
from tasks import prompts

QUESTION = "What is $2 + 3$?"


def test_the_templates_are_the_papers_texts():
    # Pinned: the strings Qwen2.5-Math's evaluation/utils.py (and the DFT repository's copy, which
    # adds llama-base-boxed) builds with .format(input=question).
    assert prompts.render("qwen-boxed", QUESTION) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is $2 + 3$?\n"
        "Please reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert prompts.render("llama-base-boxed", QUESTION) == (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|end_of_text|>\n"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is $2 + 3$?\nPlease reason step by step, and put"
        " your final answer within \\boxed{}.<|end_of_text|>\n<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert prompts.render("deepseek-math", QUESTION) == (
        "User: What is $2 + 3$?\nPlease reason step by step, and put your final answer within \\boxed{}."
        "\n\nAssistant:"
    )
    assert prompts.render("qwen-boxed", "a {brace} and {input}").count("{input}") == 1  # no format()
    assert prompts.NAMES == PROMPT_TEMPLATES  # the flag's choices and the texts stay in step


def test_training_rows_under_a_raw_template_are_plain_text(tokenizer):
    rows, _ = training_rows("math-words", None, 2, "qwen-boxed")
    example = tasks.get("math-words").load("train", limit=1)[0]
    assert rows[0]["prompt"] == prompts.render("qwen-boxed", example["question"])
    assert rows[0]["completion"] == tasks.get("math-words").messages(example)["completion"][0]["content"]
    check_row(rows[0], "row 0")
    encoded = encode(tokenizer, rows[0], max_length=512)
    trained = [t for t in encoded.labels if t != IGNORE_INDEX]
    # The completion and end-of-sequence are trained; the whole prompt text is not.
    assert tokenizer.decode(trained) == rows[0]["completion"] + tokenizer.eos_token
    prompt_ids = tokenizer(rows[0]["prompt"])["input_ids"]
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids
    assert all(label == IGNORE_INDEX for label in encoded.labels[: len(prompt_ids)])
    # The chat template is what it always was.
    assert training_rows("math-words", None, 2)[0] == training_rows("math-words", None, 2, "chat")[0]
    assert training_rows("math-words", None, 2, offset=1)[0][0] == training_rows("math-words", None, 2)[0][1]
    with pytest.raises(
        DataError,
        match="^--train-offset 1990 --train-limit 20: task math-words split train has only 10 rows past",
    ):
        training_rows("math-words", None, 20, offset=1990)


def test_a_raw_template_applies_to_math_tasks_only(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"--prompt-template: prompt template qwen-boxed is for math questions; task code-lists is code",
    ):
        parse_experiment(["--task", "code-lists", "--prompt-template", "qwen-boxed"])
    with pytest.raises(ConfigError, match=r"--eval-template: .* task humaneval is code"):
        parse_experiment(["--eval-template", "deepseek-math", "--ood-tasks", "humaneval"])
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps(
            {
                "prompt": [{"role": "user", "content": "q"}],
                "completion": [{"role": "assistant", "content": "a"}],
            }
        )
        + "\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"--prompt-template qwen-boxed renders a task's questions; the rows of --train-data",
    ):
        parse_experiment(["--train-data", str(rows), "--prompt-template", "qwen-boxed"])
    with pytest.raises(DataError, match="prompts already"):
        training_rows("math-words", str(rows), None, "qwen-boxed")
    with pytest.raises(ConfigError, match="--eval-template: .*visual-math is vlm"):
        parse_evaluate(["--task", "visual-math", "--eval-template", "qwen-boxed"])
    with pytest.raises(ConfigError, match="argument --prompt-template: invalid choice: 'qwen'"):
        parse_experiment(["--prompt-template", "qwen"])  # argparse's choices, refused as the harness refuses


def test_the_evaluation_template_defaults_to_the_training_one_and_is_recorded():
    same = parse_experiment(["--prompt-template", "qwen-boxed"])
    assert (
        same.eval_template == "qwen-boxed" and evaluation_of(same, "sft")["prompt_template"] == "qwen-boxed"
    )
    paper = parse_experiment(["--eval-template", "qwen-boxed"])  # the paper: chat in training
    assert paper.train.prompt_template == "chat" and paper.eval_template == "qwen-boxed"
    assert hparams_of(paper.train, 1)["prompt_template"] == "chat"
    assert evaluation_of(paper, "base")["prompt_template"] == "qwen-boxed"
    # The training template is a hyperparameter: it makes another configuration.
    boxed = plan_method(same, "sft").slot["hparams"]
    chat = plan_method(parse_experiment([]), "sft").slot["hparams"]
    assert config_id(boxed) != config_id(chat)


def test_records_made_before_the_template_existed_keep_their_identity(tmp_path):
    experiment = parse_experiment([])
    planned = plan_method(experiment, "sft")
    old = make_record(**planned.slot, domain="math", data={}, scores={}, wall_time_s=1.0, run_dir=None,
                      evaluation=planned.evaluation)  # fmt: skip
    for section in ("hparams", "evaluation"):  # as a record written before the setting existed
        old[section] = {k: v for k, v in old[section].items() if k not in LATER_DEFAULTS}
    path = write_record(old, tmp_path)
    assert "prompt_template" not in json.loads(path.read_text())["hparams"]  # as an old file is
    # Same file name (config id), no conflict with today's default run, read back with the default.
    assert path == record_path(planned.slot, tmp_path)
    assert conflict(path, planned.slot, planned.evaluation) is None
    assert read_record(path)["hparams"]["prompt_template"] == "chat"
    assert read_record(path)["evaluation"]["prompt_template"] == "chat"
    boxed = parse_experiment(["--eval-template", "qwen-boxed"])
    assert conflict(path, planned.slot, evaluation_of(boxed, "sft")) == (
        "evaluation.prompt_template chat (now qwen-boxed)"
    )
    # A checkpoint saved before the setting existed resumes under the default, not another template.
    saved = {k: v for k, v in vars(TrainConfig()).items() if k != "prompt_template"}
    check_resumable(saved, vars(TrainConfig()), "checkpoint-2")
    with pytest.raises(ConfigError, match="--prompt-template chat \\(now qwen-boxed\\)"):
        check_resumable(saved, vars(TrainConfig(prompt_template="qwen-boxed")), "checkpoint-2")


@pytest.mark.slow
def test_evaluation_asks_with_the_raw_template(tmp_path):
    from harness.evaluation import evaluate_task

    evaluate_task(
        "tiny",
        "math-words",
        Evaluation(limit=2, samples_dir=tmp_path, template="deepseek-math"),
        splits=["test"],
    )
    samples = [json.loads(line) for line in (tmp_path / "test.jsonl").read_text().splitlines()]
    example = tasks.get("math-words").load("test", limit=1)[0]
    assert samples[0]["prompt"] == prompts.render("deepseek-math", example["question"])


def test_a_template_mismatch_is_warned_about_once(monkeypatch, capsys, tmp_path):
    from harness import runs as module

    ran = []
    monkeypatch.setattr(module, "run_method", lambda seeded, method: ran.append(method))
    argv = ["--eval-template", "qwen-boxed", "--seeds", "0", "1", "--results-dir", str(tmp_path)]
    module.run(parse_experiment(argv))
    err = capsys.readouterr().err
    assert ran == ["base", "sft", "dft", "sft", "dft"]
    assert (
        err.count(
            "warning: the models are trained with the prompt template chat and evaluated with qwen-boxed"
        )
        == 1
    )
    module.run(
        parse_experiment(
            ["--eval-template", "qwen-boxed", "--methods", "base", "--results-dir", str(tmp_path)]
        )
    )
    assert "warning" not in capsys.readouterr().err  # nothing trained: nothing to mismatch


def test_plain_text_rows_need_a_text_backbone():
    from harness.data.encode import encode_all
    from harness.models import load_processor, load_tokenizer

    rows, _ = training_rows("math-words", None, 1, "qwen-boxed")
    processor = load_processor("tiny-vl")
    with pytest.raises(
        DataError, match="row 0: a plain-text row \\(a raw prompt template\\) needs a text backbone"
    ):
        encode_all(load_tokenizer("tiny-vl"), rows, 512, "truncate", "math-words", processor)
