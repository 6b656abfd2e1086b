"""Token-probability histograms: the probabilities are the model's own, every target counted once."""

from __future__ import annotations

import pytest
import torch

from harness.config import IGNORE_INDEX, TrainConfig
from harness.data.encode import collate, encode_all
from harness.data.rows import training_rows
from harness.models import load_model, load_tokenizer
from harness.probabilities import histogram_of, target_probabilities, token_probability_histogram


@pytest.fixture(scope="module")
def batch_and_model():
    tokenizer = load_tokenizer("tiny")
    rows, source = training_rows("math-words", None, 3)
    examples, _ = encode_all(tokenizer, rows, 512, "truncate", source)
    batch = collate(examples, 512, tokenizer.pad_token_id, packing=False)
    return batch, load_model("tiny").eval()


@pytest.mark.slow
def test_probabilities_are_softmax_of_the_full_logits_at_the_labelled_positions(batch_and_model):
    batch, model = batch_and_model
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["labels"][:, 1:]
    where = targets != IGNORE_INDEX
    expected = torch.softmax(logits[:, :-1].float(), -1).gather(2, targets.clamp(min=0)[..., None])[..., 0][
        where
    ]
    for chunk in (1024, 7):  # chunked LM head, chunks that do not divide the token count
        got = target_probabilities(model, batch, chunk_size=chunk)
        assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    assert got.numel() == int(where.sum()) > 0


def test_histogram_counts_every_token_once_and_puts_one_in_the_last_bin():
    probabilities = torch.tensor([0.0, 0.05, 0.1, 0.5, 0.99, 1.0])
    result = histogram_of(probabilities, bins=10)
    assert result["counts"] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert result["tokens"] == 6 and result["mean"] == pytest.approx(probabilities.mean().item())
    with pytest.raises(ValueError, match="bins must be >= 1"):
        histogram_of(probabilities, bins=0)
    with pytest.raises(ValueError, match="1 of 3 target probabilities are not finite"):
        histogram_of(torch.tensor([0.5, float("nan"), 0.9]))


@pytest.mark.slow
def test_histogram_of_a_checkpoint_counts_the_trained_tokens_of_its_rows():
    config = TrainConfig(task="math-words")
    result = token_probability_histogram("tiny", config, rows=5, bins=4)
    tokenizer = load_tokenizer("tiny")
    rows, source = training_rows(config.task, config.train_data, config.train_limit)
    examples, _ = encode_all(tokenizer, rows[:5], config.max_length, config.overlong, source)
    assert result["tokens"] == sum(e.trained_tokens for e in examples) == sum(result["counts"])
    assert result["rows"] == 5 and result["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert 0.0 < result["mean"] < 1.0
    with pytest.raises(ValueError, match="rows must be >= 1"):
        token_probability_histogram("tiny", config, rows=0)


@pytest.mark.slow
def test_cli_prints_the_histogram_and_names_bad_input(capsys, tmp_path):
    import json

    from harness.token_probs import main

    assert main(["--rows", "2", "--bins", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["counts"]) == 4 and printed["rows"] == 2
    assert main(["--rows", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: --rows must be >= 1, got 0"
    assert main(["--train-data", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_the_deciding_tokens_are_the_step_results_and_the_answer():
    config = TrainConfig(task="math-words")
    result = token_probability_histogram("tiny", config, rows=5, bins=4)
    tokenizer = load_tokenizer("tiny")
    rows, source = training_rows(config.task, None, None)
    examples, _ = encode_all(tokenizer, rows[:5], config.max_length, config.overlong, source)
    # The tiny tokenizer splits digits one by one: a result or answer of k digits is k tokens.
    from tasks import get

    task = get("math-words")
    digits = sum(
        len(row["completion"][-1]["content"][a:b])
        for row in rows[:5]
        for a, b in task.deciding_spans(row["completion"][-1]["content"])
    )
    assert result["deciding"]["tokens"] == digits == sum(result["deciding"]["counts"])
    assert 0 < result["deciding"]["tokens"] < result["tokens"] == sum(e.trained_tokens for e in examples)
    # The off style: the same results and answers, so as many deciding tokens, more tokens in all.
    numbered = token_probability_histogram(
        "tiny", TrainConfig(task="math-words", train_style="numbered"), rows=5
    )
    assert numbered["deciding"]["tokens"] == digits and numbered["tokens"] > result["tokens"]
    assert numbered["mean"] < result["mean"]  # a style the base never saw
