"""How completions are generated: :class:`Sampling` (greedy or sampled, the budget, the seed), the
backends that generate and evaluate, the offline-RL setting's sampling protocol, and
:class:`Evaluation`, everything that says how a model is evaluated, passed whole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from harness.config.checks import RUN, at_least, check_fields, fraction, non_negative, setting
from harness.config.settings import EVAL_BACKENDS, GENERATION_BACKENDS
from harness.errors import ConfigError


@dataclass
class Sampling:
    """How completions are generated at evaluation. A field left unset takes the value of the task's
    own protocol (``Task.protocol``: the paper's math benchmarks sample 16 completions at temperature
    1.0, top_p 1, Average@16), else greedy decoding of one completion: :meth:`resolved`."""

    temperature: float | None = setting(
        None, "0 = greedy (default: the task's protocol, else greedy)", check=non_negative
    )
    top_p: float | None = setting(
        None, "nucleus sampling threshold (default: the task's protocol, else 1)", check=fraction
    )
    num_samples: int | None = setting(
        None,
        "samples per prompt (default: the task's protocol, else 1; the paper's math: 16, Average@16)",
        check=at_least(1),
    )
    max_new_tokens: int | None = setting(None, "default: the task's own budget", check=at_least(1))
    gen_batch_size: int = setting(
        64,
        "prompts per generation batch (sampled: that many prompts' samples in flight at once)",
        check=at_least(1),
    )
    sample_seed: int = setting(
        0, "sampling seed (sample j of example i: (seed x 1000003 + i) x n + j)", check=at_least(0)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.top_p == 0:
            raise ConfigError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.temperature == 0 and (self.num_samples or 1) > 1:
            raise ConfigError(
                "--num-samples > 1 needs --temperature > 0: greedy samples would all be identical"
            )

    def resolved(self, protocol: dict[str, Any] | None = None, budget: int | None = None) -> Sampling:
        """Every unset field from ``protocol`` (a task's own settings), then greedy decoding, top_p 1
        and one sample (a greedy decoding draws one, whatever the protocol's count);
        ``max_new_tokens`` from the protocol, then ``budget`` (the task's generation budget).

        >>> paper = {"temperature": 1.0, "top_p": 1.0, "num_samples": 16}
        >>> s = Sampling().resolved(paper, budget=4096)
        >>> s.temperature, s.num_samples, s.max_new_tokens
        (1.0, 16, 4096)
        >>> Sampling(temperature=0.0).resolved(paper).num_samples, Sampling().resolved().greedy
        (1, True)
        >>> Sampling(num_samples=4).resolved(paper).num_samples
        4
        >>> Sampling(num_samples=4).resolved()
        Traceback (most recent call last):
        ...
        harness.errors.ConfigError: --num-samples 4 needs --temperature > 0: the task's protocol is greedy, and greedy samples would all be identical
        """
        protocol = protocol or {}
        temperature = self.temperature if self.temperature is not None else protocol.get("temperature", 0.0)
        if self.num_samples is not None:
            samples = self.num_samples
            if temperature == 0 and samples > 1:
                raise ConfigError(
                    f"--num-samples {samples} needs --temperature > 0: the task's protocol is greedy, "
                    "and greedy samples would all be identical"
                )
        else:
            samples = 1 if temperature == 0 else protocol.get("num_samples", 1)
        return replace(
            self,
            temperature=temperature,
            top_p=self.top_p if self.top_p is not None else protocol.get("top_p", 1.0),
            num_samples=samples,
            max_new_tokens=self.max_new_tokens or protocol.get("max_new_tokens") or budget,
        )

    @property
    def greedy(self) -> bool:
        if self.temperature is None:
            raise ValueError("resolve the sampling for its task first (Sampling.resolved)")
        return self.temperature == 0


def eval_backend() -> Any:
    """``--eval-backend``: one declaration for every command that evaluates."""
    return setting(
        "harness",
        "what runs the evaluation: the harness, or lm-eval (lm_eval.simple_evaluate on the tasks "
        "exported by python -m harness.lmeval; greedy, text tasks); the harness grades both",
        role=RUN,
        choices=EVAL_BACKENDS,
    )


def generation_backend() -> Any:
    """``--generation-backend``: one declaration for every command that evaluates."""
    return setting(
        "hf",
        "what generates the completions: Hugging Face generate, or vLLM (a GPU and vLLM installed; "
        "nox -s eval-vllm makes an environment with it)",
        role=RUN,
        choices=GENERATION_BACKENDS,
    )


def tensor_parallel_size() -> Any:
    """``--tensor-parallel-size``: vLLM's GPUs per model."""
    return setting(1, "--generation-backend vllm: GPUs one model is split over", role=RUN, check=at_least(1))


# The offline-RL setting's sampling (arXiv 2508.05629, section 4.2): four responses per training
# question from the base model at temperature 1.0; the unset Sampling fields of selfgen take these.
SELFGEN_PROTOCOL = {"temperature": 1.0, "top_p": 1.0, "num_samples": 4}


@dataclass(frozen=True)
class Evaluation:
    """How a model is evaluated, passed whole from a command to :func:`harness.evaluation.evaluate_task`
    and to the generator: which examples (the first ``limit`` of each split, asked with the prompt
    ``template``), how completions are sampled (``sampling``: unset fields take the task's protocol),
    what makes them (``generation_backend``: Hugging Face ``generate`` or vLLM on
    ``tensor_parallel_size`` GPUs; ``eval_backend``: the harness or lm-eval), on which ``device`` and
    at which image sizes (``min_pixels``, ``max_pixels``: a vision backbone's, as in training), and
    where the per-sample completions are kept (``samples_dir``; none: not kept).

    >>> Evaluation(limit=4).generation()
    {'device': None, 'generation_backend': 'hf', 'tensor_parallel_size': 1, 'min_pixels': None, 'max_pixels': None}
    """

    limit: int | None = None
    template: str = "chat"
    sampling: Sampling | None = None
    generation_backend: str = "hf"
    tensor_parallel_size: int = 1
    eval_backend: str = "harness"
    device: str | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    samples_dir: str | None = None

    def generation(self) -> dict[str, Any]:
        """What loads a model to generate (:func:`harness.evaluation.generator`): device, backend,
        tensor-parallel size and image sizes."""
        names = ("device", "generation_backend", "tensor_parallel_size", "min_pixels", "max_pixels")
        return {name: getattr(self, name) for name in names}
