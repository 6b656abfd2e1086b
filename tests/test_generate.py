"""Batched generation: the same text as a plain token-by-token decode, in input order, stopping at the
end of the turn; sampling that is seeded per sample, counted, follows the softmax, reduces to greedy
when top-p keeps one token, and is the same whatever batch or path makes it; a model folder's own
generation defaults ignored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from harness.config import Sampling
from harness.errors import ModelError
from harness.generate import (
    completion_text,
    generate,
    left_padded,
    padded_batch,
    rendered_prompts,
    sample_seeds,
    sample_tokens,
)
from harness.models import load_model, resolve, stop_token_ids

pytestmark = pytest.mark.slow  # every test here loads the embedded model

PROMPTS = [
    "What is 2 plus 3?",
    "Tom has 7 apples and buys 5 more. Then he gives away 4. How many apples does Tom have now?",
    "Solve: 12 minus 9.",
    "A box holds 3 pens. How many pens are in 4 boxes? Put the final answer in \\boxed{}.",
]


@pytest.fixture(scope="module")
def model():
    return load_model("tiny")


def conversations(prompts=PROMPTS):
    return [[{"role": "user", "content": p}] for p in prompts]


def reference_greedy(model, tokenizer, conversation, max_new_tokens):
    """One prompt, no padding, no KV cache: the full sequence goes through the model at every step."""
    ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    tokens = tokenizer(ids, add_special_tokens=False)["input_ids"]
    stops = set(stop_token_ids(tokenizer))
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([tokens + new])).logits[0, -1]
            token = int(logits.argmax())
            if token in stops:
                break
            new.append(token)
    return tokenizer.decode(new, skip_special_tokens=True)


def test_batched_greedy_with_cache_equals_plain_decode_in_input_order(model, tokenizer):
    sampling = Sampling(max_new_tokens=40, gen_batch_size=3)  # 4 prompts: a full and a partial batch
    got = generate(model, tokenizer, conversations(), sampling)
    want = [reference_greedy(model, tokenizer, c, 40) for c in conversations()]
    assert [samples for samples in got] == [[text] for text in want]


def test_batch_size_does_not_change_greedy_text(model, tokenizer):
    one = generate(model, tokenizer, conversations(), Sampling(max_new_tokens=40, gen_batch_size=1))
    all_ = generate(model, tokenizer, conversations(), Sampling(max_new_tokens=40, gen_batch_size=64))
    assert one == all_


def test_generation_stops_at_end_of_turn_and_strips_it(model, tokenizer):
    # The base model answers a short question and closes its turn well inside the budget.
    [[text]] = generate(model, tokenizer, conversations(PROMPTS[:1]), Sampling(max_new_tokens=200))
    assert "<|im_end|>" not in text and "<|im_start|>" not in text
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert 0 < len(tokens) < 200  # stopped by the end-of-turn token, not by the budget


def test_budget_caps_the_completion(model, tokenizer):
    [[text]] = generate(model, tokenizer, conversations(PROMPTS[1:2]), Sampling(max_new_tokens=5))
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 5


def test_n_samples_are_counted_seeded_and_vary(model, tokenizer):
    hot = dict(temperature=1.5, max_new_tokens=24, num_samples=4)
    first = generate(model, tokenizer, conversations(), Sampling(**hot, sample_seed=1))
    again = generate(model, tokenizer, conversations(), Sampling(**hot, sample_seed=1))
    other = generate(model, tokenizer, conversations(), Sampling(**hot, sample_seed=2))
    assert [len(samples) for samples in first] == [4, 4, 4, 4]
    assert first == again
    assert first != other
    assert any(len(set(samples)) > 1 for samples in first)  # samples of one prompt differ


def test_top_p_that_keeps_one_token_is_greedy(model, tokenizer):
    greedy = generate(model, tokenizer, conversations(), Sampling(max_new_tokens=24))
    nucleus = generate(
        model,
        tokenizer,
        conversations(),
        Sampling(temperature=1.0, top_p=1e-9, num_samples=2, max_new_tokens=24),
    )
    assert nucleus == [samples * 2 for samples in greedy]


def test_generation_needs_a_budget(model, tokenizer):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tokenizer, conversations(), Sampling())


def test_a_raw_text_prompt_is_continued_as_it_is(model, tokenizer):
    # The chat template rendered by hand and passed as text gives what the conversation gives (the
    # embedded tokenizer adds no special tokens of its own to raw text).
    conversation = conversations()[0]
    text = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    sampling = Sampling(max_new_tokens=12)
    assert generate(model, tokenizer, [text], sampling) == generate(
        model, tokenizer, [conversation], sampling
    )


def test_sampled_tokens_follow_the_softmax_and_its_nucleus():
    """The Gumbel-max draw over hashed noise is the categorical it claims: frequencies over many seeds
    match softmax(logits / T) within 4 standard errors, and top-p drops exactly the tail."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20_000, 1)
    seeds, steps = torch.arange(20_000), torch.zeros(20_000, dtype=torch.long)
    hot = Sampling(temperature=1.5, top_p=1.0).resolved()
    counts = torch.bincount(sample_tokens(logits, seeds, steps, hot), minlength=4).double()
    expected = (logits[0] / 1.5).softmax(-1).double() * 20_000
    assert torch.all((counts - expected).abs() <= 4 * (expected * (1 - expected / 20_000)).sqrt())
    # top_p 0.8 at T=1: probabilities 0.64, 0.24, 0.09, 0.03 -> the first two (0.64 < 0.8 <= 0.88)
    nucleus = sample_tokens(logits, seeds, steps, Sampling(temperature=1.0, top_p=0.8).resolved())
    counts = torch.bincount(nucleus, minlength=4).double()
    assert counts[2:].sum() == 0 and abs(counts[0] / 20_000 - 0.64 / 0.88) < 0.02
    # Another step is another draw; the same (seed, step) the same draw.
    again = sample_tokens(logits, seeds, steps, hot)
    later = sample_tokens(logits, seeds, steps + 1, hot)
    assert torch.equal(again, sample_tokens(logits, seeds, steps, hot)) and not torch.equal(again, later)


def test_a_nan_score_is_a_one_line_model_error_not_a_silent_pick():
    logits = torch.tensor([[0.0, float("nan"), 1.0]])
    with pytest.raises(ModelError, match=r"^the model's next-token scores hold NaN: .*\(try fp32\)$"):
        sample_tokens(logits, torch.tensor([0]), torch.tensor([0]), Sampling(temperature=1.0).resolved())


def test_no_two_samples_of_an_evaluation_share_a_seed():
    for n in (1, 4, 16):
        for seed in (0, 1):
            spec = Sampling(temperature=1.0, num_samples=n, sample_seed=seed).resolved()
            seeds = [s for i in range(2_000) for s in sample_seeds(spec, i)]
            assert len(set(seeds)) == len(seeds)
    first = {
        s for i in range(2_000) for s in sample_seeds(Sampling(temperature=1.0, num_samples=16).resolved(), i)
    }
    other = Sampling(temperature=1.0, num_samples=16, sample_seed=1).resolved()
    assert not first & {s for i in range(2_000) for s in sample_seeds(other, i)}


def test_a_sample_is_the_same_whatever_batch_or_path_makes_it(model, tokenizer):
    """Seeds belong to (example, sample), not to a batch: one prompt at a time, four at a time, and
    the padded ``generate`` path (used for vision prompts) give the same samples as continuous
    batching, and continuous batching with few slots refills them (fp32 on a CPU)."""
    hot = dict(temperature=1.0, max_new_tokens=32, num_samples=3, sample_seed=7)
    wide = generate(model, tokenizer, conversations(), Sampling(**hot, gen_batch_size=4))
    narrow = generate(model, tokenizer, conversations(), Sampling(**hot, gen_batch_size=1))
    assert wide == narrow
    encoded = rendered_prompts(tokenizer, conversations())[1]
    spec = Sampling(**hot, gen_batch_size=4).resolved()
    stops = stop_token_ids(tokenizer)
    padded = padded_batch(
        model, left_padded(encoded, tokenizer.pad_token_id), [0, 1, 2, 3], spec, stops, 0, "cpu"
    )
    texts = [[completion_text(tokenizer, t, stops) for t in per_prompt] for per_prompt in padded]
    assert texts == wide


def test_a_model_folders_generation_config_is_ignored(model, tokenizer, tmp_path):
    """A folder whose generation_config.json sets a repetition penalty, top-k and an extra EOS id (a
    token the model writes early in its answers) generates exactly what the plain folder does, greedy
    and sampled; the same settings through plain ``generate`` do change the text."""
    plain = Path(resolve("tiny"))
    hostile = tmp_path / "hostile"
    shutil.copytree(plain, hostile)
    [[answer]] = generate(model, tokenizer, conversations(PROMPTS[1:2]), Sampling(max_new_tokens=24))
    early = tokenizer(answer, add_special_tokens=False)["input_ids"][3]
    config = json.loads((plain / "generation_config.json").read_text())
    config |= {"repetition_penalty": 1.8, "top_k": 2, "eos_token_id": [tokenizer.eos_token_id, early]}
    (hostile / "generation_config.json").write_text(json.dumps(config))
    other = load_model(str(hostile))
    assert other.generation_config.repetition_penalty == 1.8  # the folder's settings are loaded...
    for spec in (Sampling(max_new_tokens=24), Sampling(temperature=1.0, num_samples=2, max_new_tokens=24)):
        assert generate(other, tokenizer, conversations(), spec) == generate(
            model, tokenizer, conversations(), spec
        )
    # ...and would bite: Hugging Face generate applies them when left to its defaults.
    ids = torch.tensor([rendered_prompts(tokenizer, conversations(PROMPTS[1:2]))[1][0]])
    default = other.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24)
    assert tokenizer.decode(default[0, ids.shape[1] :], skip_special_tokens=True) != answer
