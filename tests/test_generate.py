"""Batched generation: the same text as a plain token-by-token decode, in input order, stopping at the
end of the turn; sampling that is seeded, counted and reduces to greedy when top-p keeps one token."""

from __future__ import annotations

import pytest
import torch

from harness.config import Sampling
from harness.generate import generate
from harness.models import load_model, stop_token_ids

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
