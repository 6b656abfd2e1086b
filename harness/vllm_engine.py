"""vLLM as the generation backend (``--generation-backend vllm``): the paper's evaluation, 16 samples
of up to 4,096 tokens on 1,516 math problems per model, is hours with Hugging Face ``generate`` and
minutes with vLLM's paged attention and continuous batching.

It generates from exactly what the Hugging Face backend (:mod:`harness.generate`) would: the same
prompt token ids (:func:`harness.generate.rendered_prompts`: the chat template with the assistant
header, or raw text), the same stop tokens, temperature, top_p, number of samples and budget, and
the same cut at the first stop token when decoding. Greedy scores therefore agree with the Hugging
Face backend up to bf16 arithmetic; sampled ones agree in distribution, not sample by sample (each
prompt gets its own seed, ``sample_seed * 100_003 + index``, where the Hugging Face backend seeds a
batch). A vision-language prompt goes as its rendered text and its images, resized as in training.

vLLM pins its own torch, so it lives in its own environment: ``nox -s eval-vllm -- --model DIR
--task T`` builds one and evaluates a checkpoint folder there (folders are ordinary, so any
training's ``model/`` works). Where vLLM or a GPU is missing,
:func:`harness.config.resolve.check_generation_backend` says what to install in one line, before any
model loads. In Python (on a GPU, with vLLM)::

    with Engine("runs/x/sft-seed0/model") as engine:
        scores = evaluate_loaded(engine, load_tokenizer("runs/x/sft-seed0/model"), tasks.get("math-500"))
"""

from __future__ import annotations

import gc
from typing import Any

import torch

from harness.config import Sampling
from harness.config.resolve import check_generation_backend
from harness.generate import completion_text, rendered_prompts
from harness.models import stop_token_ids


class Engine:
    """A vLLM engine on one model folder, used like a loaded model by :mod:`harness.evaluate`; close it
    (or use it as a context manager) to give the GPU memory back before the next model loads."""

    def __init__(
        self,
        model_dir: str,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ):
        check_generation_backend("vllm", tensor_parallel_size)
        from vllm import LLM

        pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
        self.llm = LLM(
            model=model_dir,
            tensor_parallel_size=tensor_parallel_size,
            dtype="bfloat16",
            seed=seed,
            # The sampling settings are ours alone, never the folder's generation_config defaults.
            generation_config="vllm",
            **({"mm_processor_kwargs": pixels} if pixels else {}),
        )

    def generate(
        self, tokenizer, conversations: list[list[dict] | str], sampling: Sampling, processor=None
    ) -> list[list[str]]:
        """:func:`harness.generate.generate`'s contract: ``num_samples`` completions per conversation."""
        from vllm import SamplingParams

        sampling = sampling.resolved()
        if sampling.max_new_tokens is None:
            raise ValueError("Sampling.max_new_tokens must be set before generating")
        texts, encoded, images = rendered_prompts(tokenizer, conversations, processor)
        stop_ids = stop_token_ids(tokenizer)
        prompts: list[dict[str, Any]] = [
            {"prompt_token_ids": ids} for ids in encoded
        ] if encoded is not None else [
            {"prompt": text, **({"multi_modal_data": {"image": pics}} if pics else {})}
            for text, pics in zip(texts, images)
        ]  # fmt: skip
        params = [
            SamplingParams(
                n=sampling.num_samples,
                temperature=0.0 if sampling.greedy else sampling.temperature,
                top_p=1.0 if sampling.greedy else sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                stop_token_ids=stop_ids,
                seed=sampling.sample_seed * 100_003 + i,
                skip_special_tokens=True,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            [completion_text(tokenizer, list(o.token_ids), stop_ids) for o in out.outputs] for out in outputs
        ]

    def close(self) -> None:
        """Free the engine and its GPU memory (vLLM keeps both until told)."""
        try:
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except ImportError:  # a vLLM without these helpers frees on collection
            pass
        del self.llm
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
