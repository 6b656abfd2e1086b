"""Generation with the KV cache: greedy, or sampled with temperature / top-p and n samples, under one
sampling protocol whichever backend runs it (:func:`generation_settings`).

Prompts are conversations rendered with the model's chat template (with the assistant header), or
plain strings continued as they are (raw completion, for base models); generation stops at the
end-of-turn token or EOS (:func:`harness.models.stop_token_ids`), never at a model folder's own
``generation_config.json`` stops, and no folder default (a repetition penalty, a top-k) applies.

Prompts are sorted by length, longest first, and cut into batches (:func:`generation_batches`); the
answers come back in the input order. The batches are a function of the prompts alone, so an
evaluation killed half way regenerates exactly the batches it lacks (``done``, ``on_batch``).

- **Greedy**: each batch left-padded through Hugging Face ``generate``.
- **Sampled**, text backbones: continuous batching (:func:`_continuous`): ``gen_batch_size`` ×
  ``num_samples`` sequences in flight (what a padded batch holds), a finished one leaves the KV cache
  at once and, when half the slots are free, new ones are prefilled and joined to it, so no slot
  waits for the longest sample. Vision-language prompts are sampled through ``generate``.
- **Seeds per sample**: sample j of example i draws its tokens from a counter-based hash of the
  seed ``(sample_seed × 1,000,003 + i) × n + j`` and the step (:func:`sample_tokens`), the seed vLLM
  gets for the same sample. A sample is the same whatever batch or device it runs in (up to the
  logits' arithmetic), and no two samples of an evaluation share a stream.

>>> from harness.models import load_model, load_tokenizer
>>> model, tokenizer = load_model("tiny"), load_tokenizer("tiny")
>>> from harness.config import Sampling
>>> [[text]] = generate(model, tokenizer, [[{"role": "user", "content": "What is 2 plus 3?"}]],
...                     Sampling(max_new_tokens=16))
>>> isinstance(text, str)
True
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Collection
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache, GenerationConfig, LogitsProcessor, LogitsProcessorList

from harness.config import Sampling
from harness.data.images import resolved_conversation
from harness.errors import ModelError
from harness.models import stop_token_ids

# Seeds: more prompts than any benchmark has, so the seeds of two sample_seed values never meet.
SEED_STRIDE = 1_000_003
# A sampled batch holds this many times gen_batch_size prompts (its slots refill 4 times over): long
# enough that slots rarely idle, short enough that a killed evaluation loses little.
REFILLS_PER_BATCH = 4
# vLLM schedules its own continuous batch: it gets this many prompts per call (a resumable unit).
VLLM_PROMPTS_PER_BATCH = 256

OnBatch = Callable[[list[int], list[list[str]]], None]


def sample_seeds(sampling: Sampling, index: int) -> range:
    """The seeds of example ``index``'s samples (vLLM gives sample j of a request ``seed + j``).

    >>> list(sample_seeds(Sampling(temperature=1.0, num_samples=4, sample_seed=0).resolved(), 2))
    [8, 9, 10, 11]
    """
    first = (sampling.sample_seed * SEED_STRIDE + index) * sampling.num_samples
    return range(first, first + sampling.num_samples)


def generation_settings(sampling: Sampling) -> dict[str, Any]:
    """Every setting the completions were generated with, for the record: the protocol's (temperature,
    top_p, samples, budget, seed) and the neutral values of those it does not name, which both
    backends set explicitly."""
    return {
        "temperature": sampling.temperature,
        "top_p": 1.0 if sampling.greedy else sampling.top_p,
        "top_k": None,  # off
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "num_samples": sampling.num_samples,
        "max_new_tokens": sampling.max_new_tokens,
        "stop": "the chat template's end of turn and the tokenizer's EOS",
        "model_generation_config": "ignored",
        "seeds": None
        if sampling.greedy
        else f"sample j of example i: ({sampling.sample_seed} * {SEED_STRIDE} + i) * n + j",
    }


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    conversations: list[list[dict] | str],
    sampling: Sampling,
    processor=None,
    *,
    done: Collection[int] = (),
    on_batch: OnBatch | None = None,
    padded: bool = False,
) -> list[list[str]]:
    """For each conversation, ``sampling.num_samples`` completions (strings, special tokens removed).
    A vision-language backbone takes its ``processor``: image parts are loaded and resized as in
    training (:mod:`harness.data.images`) and each batch carries its images. A batch whose prompts are
    all in ``done`` is skipped (its entries stay empty); ``on_batch(indices, completions)`` is called
    as each batch finishes. ``padded``: sampled text prompts too go through left-padded ``generate``
    batches (the path before continuous batching, which the benchmark compares against)."""
    sampling = sampling.resolved()  # what is still unset: greedy, one completion
    if sampling.max_new_tokens is None:
        raise ValueError("Sampling.max_new_tokens must be set before generating")
    model.eval()
    device = next(model.parameters()).device
    stop_ids = stop_token_ids(tokenizer)
    texts, encoded, images = rendered_prompts(tokenizer, conversations, processor)
    lengths = [len(ids) for ids in encoded] if processor is None else [len(t) for t in texts]
    results: list[list[str]] = [[] for _ in conversations]
    continuous = processor is None and not sampling.greedy and not padded
    # A padded batch holds gen_batch_size prompts (with their samples), as it always has.
    for chosen in generation_batches(lengths, sampling, None if continuous else sampling.gen_batch_size):
        if all(i in done for i in chosen):
            continue
        if continuous:
            tokens = _continuous(model, [encoded[i] for i in chosen], chosen, sampling, stop_ids, device)
        else:
            if processor is not None:
                inputs = processor(
                    text=[texts[i] for i in chosen],
                    images=[image for i in chosen for image in images[i]] or None,
                    padding=True,
                    padding_side="left",
                    return_tensors="pt",
                )
            else:
                inputs = left_padded([encoded[i] for i in chosen], tokenizer.pad_token_id)
            tokens = padded_batch(model, inputs, chosen, sampling, stop_ids, tokenizer.pad_token_id, device)
        completions = [[completion_text(tokenizer, t, stop_ids) for t in per_prompt] for per_prompt in tokens]
        for i, texts_of_i in zip(chosen, completions):
            results[i] = texts_of_i
        if on_batch is not None:
            on_batch(chosen, completions)
    return results


def generation_batches(
    lengths: list[int], sampling: Sampling, prompts_per_batch: int | None = None
) -> list[list[int]]:
    """The prompts' indices, longest first, cut into batches: ``gen_batch_size`` prompts when greedy,
    ``REFILLS_PER_BATCH`` × ``gen_batch_size`` when sampled (the slots refill that many times), or
    ``prompts_per_batch``. A function of the prompts alone, so a resumed evaluation cuts the same.

    >>> generation_batches([3, 9, 5, 7], Sampling(gen_batch_size=2).resolved())
    [[1, 3], [2, 0]]
    """
    if prompts_per_batch is None:
        if sampling.greedy:
            prompts_per_batch = sampling.gen_batch_size
        else:
            prompts_per_batch = REFILLS_PER_BATCH * sampling.gen_batch_size
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + prompts_per_batch] for start in range(0, len(order), prompts_per_batch)]


@contextlib.contextmanager
def _no_folder_defaults(model):
    """Hide the model folder's ``generation_config.json`` from ``generate``, which fills every setting
    left unset from it (a repetition penalty, extra EOS ids, top-k): the protocol is ours alone."""
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def padded_batch(model, inputs, chosen, sampling, stop_ids, pad_id, device) -> list[list[list[int]]]:
    """One left-padded batch through Hugging Face ``generate``: the new tokens of each sample, per
    prompt. Sampling is ours (:class:`_SeededSampling`): ``generate`` only takes its pick."""
    width = inputs["input_ids"].shape[1]
    n = sampling.num_samples
    sampler = [] if sampling.greedy else [_SeededSampling(sampling, chosen, width)]
    # Sampled: our processor leaves one finite score per row, so generate's own draw can only take it
    # (generate refuses several sequences per prompt unless it samples).
    # Greedy: no sampling settings at all (generate warns about any it would ignore).
    draw = {} if sampling.greedy else {"temperature": 1.0, "top_p": 1.0, "top_k": 0}
    config = GenerationConfig(
        max_new_tokens=sampling.max_new_tokens,
        do_sample=not sampling.greedy,
        **draw,
        num_beams=1,
        num_return_sequences=n,
        repetition_penalty=1.0,
        eos_token_id=stop_ids,
        pad_token_id=pad_id,
        use_cache=True,
    )
    with _no_folder_defaults(model):
        output = model.generate(
            **{k: v.to(device) for k, v in inputs.items()},
            generation_config=config,
            logits_processor=LogitsProcessorList(sampler),
        )
    new_tokens = output[:, width:].tolist()
    return [new_tokens[k * n : (k + 1) * n] for k in range(len(chosen))]


class _SeededSampling(LogitsProcessor):
    """Inside ``generate``: each row draws its next token with its own sample's seed
    (:func:`sample_tokens`) and every other token is masked, so ``generate``'s own step takes the draw.
    Rows are prompt-major, as ``num_return_sequences`` orders them."""

    def __init__(self, sampling: Sampling, chosen: list[int], width: int):
        self.sampling, self.width = sampling, width
        self.seeds = torch.tensor([s for i in chosen for s in sample_seeds(sampling, i)], dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = torch.full_like(self.seeds, input_ids.shape[1] - self.width)
        picks = sample_tokens(scores, self.seeds.to(scores.device), step.to(scores.device), self.sampling)
        masked = torch.full_like(scores, float("-inf"))
        return masked.scatter_(1, picks[:, None], 0.0)


def _continuous(
    model, prompts: list[list[int]], chosen: list[int], sampling, stop_ids, device
) -> list[list[list[int]]]:
    """Continuous batching for sampled text generation: at most ``gen_batch_size`` × ``num_samples``
    sequences in flight. A finished sequence leaves the KV cache at once. When half the slots are
    free, the next waiting sequences are prefilled on their own and their keys and values joined to
    the running ones' (left-padded to one width; columns no row uses are trimmed). A cache whose
    layers are not plain (a sliding window) is rebuilt instead: the running sequences prefilled again
    with the new ones, recomputing their tokens, as vLLM does on preemption."""
    n = sampling.num_samples
    slots = sampling.gen_batch_size * n  # as many sequences in flight as a padded batch holds
    sequences = [(k, j) for k in range(len(chosen)) for j in range(n)]
    seeds = torch.tensor(
        [sample_seeds(sampling, chosen[k])[j] for k, j in sequences], dtype=torch.long, device=device
    )
    generated: list[list[int]] = [[] for _ in sequences]
    waiting = list(range(len(sequences)))[::-1]  # popped from the end: in order
    running: list[int] = []
    # Per running row, on the device: its sample's seed and how many tokens it has drawn.
    row_seeds = row_steps = None
    stops = set(stop_ids)
    cache = mask = logits = None
    # transformers 5.24 renamed forward's past_key_values to cache; vLLM's environment has 5.19.
    cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def prefill(rows: list[list[int]]):
        inputs = left_padded(rows, 0)
        fresh_mask = inputs["attention_mask"].to(device)
        fresh = DynamicCache(config=model.config)
        out = model(
            input_ids=inputs["input_ids"].to(device),
            attention_mask=fresh_mask,
            position_ids=(fresh_mask.cumsum(-1) - 1).clamp(min=0),
            **{cache_name: fresh},
            use_cache=True,
            logits_to_keep=1,
        )
        return fresh, fresh_mask, out.logits[:, -1]

    while waiting or running:
        if waiting and len(running) <= slots // 2:
            new = [waiting.pop() for _ in range(min(slots - len(running), len(waiting)))]
            new_seeds = seeds[torch.tensor(new, device=device)]
            if cache is not None and _joinable(cache):
                added, added_mask, added_logits = prefill([prompts[sequences[s][0]] for s in new])
                mask = _join(cache, mask, added, added_mask)
                logits = torch.cat([logits, added_logits])
                row_seeds = torch.cat([row_seeds, new_seeds])
                row_steps = torch.cat([row_steps, row_steps.new_zeros(len(new))])
            else:
                drawn = [len(generated[s]) for s in running]
                cache, mask, logits = prefill(
                    [prompts[sequences[s][0]] + generated[s] for s in running + new]
                )
                row_seeds = new_seeds if row_seeds is None else torch.cat([row_seeds, new_seeds])
                row_steps = torch.tensor(drawn + [0] * len(new), dtype=torch.long, device=device)
            running += new
        picks = sample_tokens(logits.float(), row_seeds, row_steps, sampling)
        row_steps += 1
        tokens = picks.tolist()  # the step's one wait for the device
        for s, token in zip(running, tokens):
            generated[s].append(token)
        keep = [
            r
            for r, (s, token) in enumerate(zip(running, tokens))
            if token not in stops and len(generated[s]) < sampling.max_new_tokens
        ]
        if len(keep) < len(running):
            running = [running[r] for r in keep]
            if not running:
                cache = row_seeds = row_steps = None
                continue
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, picks, row_seeds, row_steps = mask[index], picks[index], row_seeds[index], row_steps[index]
            if _joinable(cache):
                mask = _trim(cache, mask)
        mask = torch.cat([mask, mask.new_ones(len(running), 1)], dim=1)
        logits = model(
            input_ids=picks[:, None],
            attention_mask=mask,
            position_ids=mask.sum(-1, keepdim=True) - 1,
            **{cache_name: cache},
            use_cache=True,
        ).logits[:, -1]
    return [[generated[k * n + j] for j in range(n)] for k in range(len(chosen))]


def _joinable(cache) -> bool:
    """Whether every layer of ``cache`` is a plain growing one (its ``keys`` and ``values`` all it
    holds), so two such caches can be joined row-wise."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def _join(cache, mask: torch.Tensor, added, added_mask: torch.Tensor) -> torch.Tensor:
    """``added``'s rows appended to ``cache``'s, both left-padded to one width (a padded column is
    masked, so its zeros are never attended); the joined attention mask."""
    width = max(mask.shape[1], added_mask.shape[1])

    def pad(tensor: torch.Tensor, to: int) -> torch.Tensor:  # left padding along the sequence axis
        return F.pad(tensor, (0, 0, to - tensor.shape[-2], 0))

    for layer, other in zip(cache.layers, added.layers, strict=True):
        layer.keys = torch.cat([pad(layer.keys, width), pad(other.keys, width)])
        layer.values = torch.cat([pad(layer.values, width), pad(other.values, width)])
    return torch.cat(
        [F.pad(mask, (width - mask.shape[1], 0)), F.pad(added_mask, (width - added_mask.shape[1], 0))]
    )


def _trim(cache, mask: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns no running row attends to (left by finished rows)."""
    first = int(mask.any(dim=0).int().argmax())
    if first == 0:
        return mask
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
    return mask[:, first:]


def sample_tokens(
    logits: torch.Tensor, seeds: torch.Tensor, steps: torch.Tensor, sampling: Sampling
) -> torch.Tensor:
    """One token per row from ``softmax(logits / temperature)`` cut to its top-p nucleus, drawn by the
    Gumbel-max trick with noise from a counter-based hash of (the row's seed, its step, the token):
    exact categorical sampling, vectorized, and the same noise on any device or batch.

    >>> logits = torch.tensor([[0.0, 0.0, 9.0], [5.0, 0.0, 0.0]])
    >>> s = Sampling(temperature=0.1, top_p=1.0).resolved()
    >>> sample_tokens(logits, torch.tensor([1, 2]), torch.tensor([0, 0]), s).tolist()
    [2, 0]
    """
    scores = logits.float() / sampling.temperature
    if bool(torch.isnan(scores).any()):  # argmax would silently take the NaN
        raise ModelError(
            "the model's next-token scores hold NaN: its weights or their dtype are broken (try fp32)"
        )
    if sampling.top_p < 1.0:
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        probs = sorted_scores.softmax(dim=-1)
        outside = probs.cumsum(dim=-1) - probs > sampling.top_p  # the first token is always kept
        scores = scores.scatter(-1, order, sorted_scores.masked_fill(outside, float("-inf")))
    vocab = torch.arange(scores.shape[-1], device=scores.device)
    bits = _mix(_mix(seeds[:, None] * _GOLDEN + steps[:, None]) + vocab[None, :] * _GOLDEN)
    uniform = ((bits >> 40) & 0xFFFFFF).float().add_(0.5).mul_(2.0**-24)  # 24 bits in (0, 1)
    return (scores - uniform.log_().neg_().log_()).argmax(dim=-1)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1, _M2 = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer on int64 (multiplication wraps modulo 2**64; shifts made logical)."""
    x = (x ^ ((x >> 30) & ((1 << 34) - 1))) * _M1
    x = (x ^ ((x >> 27) & ((1 << 37) - 1))) * _M2
    return x ^ ((x >> 31) & ((1 << 33) - 1))


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


def left_padded(encoded: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left padding: every prompt ends where generation starts."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
