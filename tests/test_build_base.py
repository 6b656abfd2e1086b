"""The embedded base model: rebuilt deterministically, and it knows more than an untrained one."""

import hashlib
import json

import pytest

from harness.build.base import BuildConfig, build
from harness.models import EMBEDDED, load_model, load_tokenizer


def digest(folder) -> dict[str, str]:
    names = ("model.safetensors", "tokenizer.json", "config.json")
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


@pytest.mark.slow
def test_build_is_deterministic(tmp_path):
    small = dict(
        documents=400,
        steps=3,
        batch=4,
        seq_len=64,
        hidden=32,
        layers=1,
        heads=2,
        kv_heads=1,
        intermediate=64,
        report=False,
    )
    first = build(BuildConfig(out=str(tmp_path / "a"), **small))
    second = build(BuildConfig(out=str(tmp_path / "b"), **small))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert first["heldout_nll"] == second["heldout_nll"]
    assert not list(tmp_path.glob(".build-*"))  # the staging folder was swapped in, not left behind


def test_committed_base_has_a_real_prior():
    report = json.loads((EMBEDDED["tiny"] / "base_report.json").read_text())
    nll = report["heldout_nll"]
    assert nll["pretrained"] < 0.5 * nll["untrained"]
    accuracy = report["math_words_greedy_accuracy"]
    assert accuracy["pretrained"]["test"] > accuracy["untrained"]["test"]


@pytest.mark.slow
def test_committed_base_loads_with_chat_template_and_digit_tokens():
    tokenizer = load_tokenizer("tiny")
    model = load_model("tiny")
    assert model.config.model_type == "qwen2"
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 2e7  # "a few million parameters"
    ids = tokenizer("123 + 45 = 168", add_special_tokens=False)["input_ids"]
    digits = [tokenizer.decode([i]) for i in ids if tokenizer.decode([i]).strip().isdigit()]
    assert digits == list("12345168")  # one token per digit
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.slow
def test_committed_base_has_a_code_prior():
    # Python the base never saw (another seed than the corpus) is far more predictable to it than a
    # uniform guess (ln 720 = 6.6 nats): it learned the language from the corpus's code files. The
    # committed base gets 0.58; a base without code in its corpus got 13, and one pretrained on
    # tokens its saved tokenizer does not produce (newline + indent merged) got 2.4.
    import random

    import torch

    from harness.build.corpus import python_file

    tokenizer, model = load_tokenizer("tiny"), load_model("tiny")
    rng = random.Random(987_654)
    text = "\n\n".join(python_file(rng, frozenset()) for _ in range(8))
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"][:1000]])
    with torch.no_grad():
        nll = model(input_ids=ids, labels=ids).loss.item()
    assert nll < 1.5, nll
