"""Batched generation with the KV cache: greedy, or sampled with temperature / top-p and n samples.

Prompts are conversations rendered with the model's chat template (with the assistant header), or
plain strings continued as they are (raw completion, for base models); generation stops at the
end-of-turn token. Prompts are sorted by length and left-padded, so a batch
wastes little on padding, and the answers come back in the input order.

>>> from harness.models import load_model, load_tokenizer
>>> model, tokenizer = load_model("tiny"), load_tokenizer("tiny")
>>> from harness.config import Sampling
>>> [[text]] = generate(model, tokenizer, [[{"role": "user", "content": "What is 2 plus 3?"}]],
...                     Sampling(max_new_tokens=16))
>>> isinstance(text, str)
True
"""

from __future__ import annotations

import torch

from harness.config import Sampling
from harness.data.images import resolved_conversation
from harness.models import stop_token_ids


@torch.inference_mode()
def generate(
    model, tokenizer, conversations: list[list[dict] | str], sampling: Sampling, processor=None
) -> list[list[str]]:
    """For each conversation, ``sampling.num_samples`` completions (strings, special tokens removed).
    A vision-language backbone takes its ``processor``: image parts are loaded and resized as in
    training (:mod:`harness.data.images`) and each batch carries its images."""
    sampling = sampling.resolved()  # what is still unset: greedy, one completion
    if sampling.max_new_tokens is None:
        raise ValueError("Sampling.max_new_tokens must be set before generating")
    model.eval()
    device = next(model.parameters()).device
    stop_ids = stop_token_ids(tokenizer)
    texts, encoded, images = rendered_prompts(tokenizer, conversations, processor)
    if processor is None:
        lengths = [len(ids) for ids in encoded]
    else:
        lengths = [len(t) for t in texts]  # image tokens exist only once the processor expands them
    # Longest first, so a batch wastes little on padding.
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    results: list[list[str]] = [[] for _ in conversations]
    for start in range(0, len(order), sampling.gen_batch_size):
        chosen = order[start : start + sampling.gen_batch_size]
        if processor is not None:
            batch_images = [image for i in chosen for image in images[i]]
            inputs = processor(
                text=[texts[i] for i in chosen],
                images=batch_images or None,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            )
        else:
            inputs = _left_padded([encoded[i] for i in chosen], tokenizer.pad_token_id)
        width = inputs["input_ids"].shape[1]
        # One seed per batch: results do not depend on how many batches ran before on this process.
        torch.manual_seed(sampling.sample_seed * 100_003 + start)
        output = model.generate(
            **{k: v.to(device) for k, v in inputs.items()},
            max_new_tokens=sampling.max_new_tokens,
            do_sample=not sampling.greedy,
            temperature=sampling.temperature if not sampling.greedy else None,
            top_p=sampling.top_p if not sampling.greedy else None,
            top_k=None,
            num_return_sequences=sampling.num_samples,
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id,
            use_cache=True,
        )
        new_tokens = output[:, width:].tolist()
        for k, tokens in enumerate(new_tokens):
            results[chosen[k // sampling.num_samples]].append(completion_text(tokenizer, tokens, stop_ids))
    return results


def rendered_prompts(
    tokenizer, conversations: list[list[dict] | str], processor=None
) -> tuple[list[str], list[list[int]] | None, list[list]]:
    """Each prompt as every generation backend sees it: the text (a conversation through the chat
    template with the assistant header, a string as it is), its token ids (text backbones; None with
    a ``processor``, which expands image tokens itself) and its images, loaded and resized as in
    training."""
    prompts = list(conversations)  # images are loaded into a copy; the caller's list stays as it was
    images: list[list] = [[] for _ in prompts]
    if processor is not None:
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                prompts[i], images[i] = resolved_conversation({"prompt": prompt, "completion": []}, processor)
    template = processor or tokenizer
    texts = [
        c
        if isinstance(c, str)
        else template.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
        for c in prompts
    ]
    if processor is not None:
        return texts, None, images
    # A rendered chat template already holds its special tokens; raw text gets the tokenizer's own
    # (a Llama base model's BOS), as its pretraining text had.
    encoded = [
        tokenizer(t, add_special_tokens=isinstance(c, str))["input_ids"] for t, c in zip(texts, prompts)
    ]
    return texts, encoded, images


def completion_text(tokenizer, tokens: list[int], stop_ids: list[int]) -> str:
    """The generated ``tokens`` up to the first stop token, decoded without special tokens."""
    cut = next((i for i, t in enumerate(tokens) if t in stop_ids), len(tokens))
    return tokenizer.decode(tokens[:cut], skip_special_tokens=True)


def _left_padded(encoded: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left padding: every prompt ends where generation starts."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
