"""Every setting of the harness in one place: the config dataclasses, their roles, the presets and
the flag builder; :mod:`harness.config.resolve` is the one resolve step that every entry point runs
before any data or model loads.

Each field is declared once, with its default, its help text, the check its value must pass and its
**role**, and everything else is derived from those declarations:

- ``hparam``: changes the trained model. Kept in a record's ``hparams``, hashed into its config id,
  and checked on ``--resume`` (any change is refused, naming the field).
- ``objective``: an ``hparam`` that chooses the loss (``objective`` and the DFT variants). The SFT
  and DFT runs of one configuration differ only in these, so they are left out of the config id
  (that is how the leaderboard pairs them).
- ``run``: where, how fast or how watched a run happens (output folder, device, progress bar,
  checkpoints, training-time evaluation). May differ on resume; never in a record's ``hparams``.

More marks: ``axis`` (a sweep's grid axis: ``--lr``, ``--batch-size``), ``replicate`` (what varies
between replicates of one configuration: ``--seed``; left out of the config id, so the seeds of one
configuration share it and are averaged; the experiment and the sweep take a list, ``--seeds``),
``split`` (how the global batch is split: ``--micro-batch-size``), ``per_method`` (set by the experiment for each method:
``--output-dir``, ``--objective``, ``--resume``) and ``per_cell`` (set by the sweep for each cell:
the experiment's ``--task`` and ``--methods``).

Resolving a command line (:mod:`harness.config.resolve`): the preset's values (``--preset``) -> the
flags given -> the domain's defaults (``--task visual-math`` alone picks the embedded VLM,
``tiny-vl``) -> validation (every value, the batch split over the ranks, the task and OOD task
names, the model folder) -> the derived batch split. ``--micro-batch-size`` is the most examples
that fit in one forward pass on one rank; the micro-batch used is the largest that fits and divides
each rank's share of ``--batch-size``, with gradient accumulation making up the rest
(:func:`split_batch`). This module imports only the standard library: records and leaderboards read
it, and rendering a page must not load torch.

>>> split_batch(48, 32, 1)
(24, 2)
>>> TrainConfig(lr=-1.0)
Traceback (most recent call last):
...
harness.errors.ConfigError: --lr must be a positive number, got -1.0
>>> "lr" in HPARAM_KEYS, "objective" in OBJECTIVE_KEYS, "device" in HPARAM_KEYS
(True, True, False)
"""

from __future__ import annotations

import argparse
import math
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, TypeVar

from harness import objectives
from harness.errors import ConfigError
from harness.recipes import recipe

HPARAM, OBJECTIVE, RUN = "hparam", "objective", "run"
# The training objectives (harness.losses.Objective). The experiment and the sweep train SFT and DFT
# unless --methods / --method name others.
OBJECTIVES = objectives.NAMES  # the table of harness.objectives, in its order
METHODS = ("base", *OBJECTIVES)  # "base": the untouched backbone, evaluated only
OVERLONG_POLICIES = ("truncate", "drop", "error")
SHARDING = ("ddp", "fsdp")  # how torchrun ranks hold the model: harness.sharding
# How a task's question becomes prompt text: the backbone's chat template, or one of the raw prompt
# templates of the paper's evaluation (their texts: tasks/prompts.py; a test keeps the two in step).
EVAL_BACKENDS = ("harness", "lm-eval")
GENERATION_BACKENDS = ("hf", "vllm")  # what generates the harness's completions: harness.vllm_engine
PROMPT_TEMPLATES = ("chat", "qwen-boxed", "llama-base-boxed", "deepseek-math")
# Settings added after records were first written, with the value every older record and checkpoint
# was made with (the only one there was): filled in where one is read, and left out of the config id
# at that value, so the records made before keep their identity and their reference comparisons.
LATER_DEFAULTS = {"prompt_template": "chat", "lora_rank": 0, "lora_alpha": None}  # of hparams
LATER_EVALUATION_DEFAULTS = {"prompt_template": "chat"}  # of a record's ``evaluation``
# The embedded model a domain trains when --model is not given; every other domain: "tiny".
DOMAIN_MODELS = {"vlm": "tiny-vl"}
# The token-probability histogram (harness.token_probs): training rows read, bins over [0, 1].
PROB_ROWS, PROB_BINS = 256, 20


# --- checks: each returns what is wrong with a value, or None ------------------------------------


def positive(value) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        return f"must be a positive number, got {value!r}"
    return None


def at_least(low: int) -> Callable[[Any], str | None]:
    def check(value) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number >= {low}, got {value!r}"
        if value < low:
            return f"must be >= {low}, got {value!r}"
        return None

    return check


def non_negative(value) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        return f"must be >= 0, got {value!r}"
    return None


def fraction(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        return f"must be in [0, 1], got {value!r}"
    return None


def open_fraction(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        return f"must be in (0, 1), got {value!r}"
    return None


def below_one(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        return f"must be in [0, 1), got {value!r}"
    return None


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def setting(default, help: str, *, role: str = HPARAM, check=None, choices=None, **marks) -> Any:
    """A config field: its default, help text, role (``hparam``, ``objective`` or ``run``), the check
    of its value (skipped for ``None``), argparse choices, and marks (``axis``, ``per_method``)."""
    if choices is not None and check is None:
        check = one_of(choices)
    metadata = {"help": help, "role": role, "check": check, "choices": choices, **marks}
    if isinstance(default, list):  # a fresh list per instance
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_fields(config) -> None:
    """Raise :class:`ConfigError` for the first field whose value fails its check, naming its flag.
    A list is checked value by value (a sweep's ``--lr 1e-3 -1``)."""
    for f in fields(config):
        check, value = f.metadata.get("check"), getattr(config, f.name)
        if check is None or value is None:
            continue
        for each in value if isinstance(value, list) else [value]:
            problem = check(each)
            if problem:
                raise ConfigError(f"{flag(f.name)} {problem}")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# --- the configs -----------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """One training run. Defaults are the DFT paper's math recipe (arXiv 2508.05629): AdamW (0.9,
    0.95), weight decay 0.01, lr 5e-5, cosine with 10% warmup, clip 1.0, global batch 256, max
    length 2048, one epoch. Field order is the order of a record's ``hparams``."""

    output_dir: str = setting(
        "runs/train", "where logs, checkpoints and model/ go", role=RUN, per_method=True
    )
    model: str | None = setting(
        None,
        "'tiny' or 'tiny-vl' (embedded), 'smollm2-135m' (a pretrained model from a pip package), a "
        "local model folder, a .gguf file or a hub id (default: the embedded model of the task's domain)",
    )
    task: str = setting("math-words", "task whose train split is used")
    train_data: str | None = setting(None, "a .jsonl/.json/.parquet file of prompt/completion rows instead")
    train_limit: int | None = setting(None, "use only the first N training rows", check=at_least(1))
    train_offset: int = setting(
        0,
        "skip the first N training rows (a warm-up pool disjoint from a --train-limit run's rows); "
        "with an offset, fewer than --train-limit rows left is an error, not a smaller run",
        check=at_least(0),
        later=True,
    )
    train_noise: float = setting(
        0.0,
        "give this fraction of the training rows a wrong final answer (another row's; which rows: "
        "drawn from --seed): noisy demonstrations",
        check=below_one,
        later=True,
    )
    prompt_template: str = setting(
        "chat",
        "how the task's questions become prompt text in training: the backbone's chat template, or a "
        "raw template of the paper's math evaluation",
        choices=PROMPT_TEMPLATES,
    )
    objective: str = setting("sft", "training objective", role=OBJECTIVE, choices=OBJECTIVES, per_method=True)
    # Each objective's own parameters (harness.losses has the formulas; harness.objectives which
    # objectives read each: any other refuses a value away from the default), ``short`` names a value
    # away from the default in a variant's name (dft-floor0.1), the default is the paper's.
    dft_min_weight: float = setting(
        0.0, "DFT weight floor (0 = paper)", role=OBJECTIVE, check=fraction, short="floor"
    )
    dft_alpha: float = setting(
        1.0,
        "w = alpha*p + (1-alpha); 1 = paper DFT",
        role=OBJECTIVE,
        check=fraction,
        short="alpha",
    )
    q: float = setting(
        10.0,
        "q-family's exponent: per-token loss (1 - p^q)/q; q -> 0 is SFT, q = 1 has DFT's gradient, "
        "10 is the paper's -p^10",
        role=OBJECTIVE,
        check=positive,
        short="q",
        later=True,
    )
    prob_threshold: float = setting(
        0.1,
        "tau on the target token's probability: ProFit trains only tokens above it, GFT weights by p "
        "only below it (both papers: 0.1)",
        role=OBJECTIVE,
        check=open_fraction,
        short="tau",
        later=True,
    )
    eaft_alpha: float = setting(
        1.0,
        "EAFT's exponent on the normalized top-K entropy (1 = the paper's and LLaMA-Factory's)",
        role=OBJECTIVE,
        check=non_negative,
        short="ealpha",
        later=True,
    )
    eaft_top_k: int = setting(
        20,
        "EAFT: the top K logits whose entropy stands for the token's (the paper: 20)",
        role=OBJECTIVE,
        check=at_least(2),
        short="k",
        later=True,
    )
    asft_lambda: float = setting(
        0.05,
        "ASFT: weight of the KL divergence to the frozen starting model, KL(start || model) over the "
        "whole vocabulary at every trained token",
        role=OBJECTIVE,
        check=non_negative,
        short="lambda",
        later=True,
    )
    psft_clip: float = setting(
        0.2,
        "PSFT: epsilon of the clipped ratio p / p_old, clipped to [1 - eps, 1 + eps] (PPO's 0.2)",
        role=OBJECTIVE,
        check=open_fraction,
        short="eps",
        later=True,
    )
    psft_minibatches: int = setting(
        8,
        "PSFT: optimizer steps (of --batch-size rows each) per PSFT batch, the old policy being the "
        "model at the start of each batch (the paper: batches of 256 rows in mini-batches of 32: 8)",
        role=OBJECTIVE,
        check=at_least(1),
        short="mb",
        later=True,
    )
    iwsft_temperature: float = setting(
        1.0,
        "iw-SFT: T of a sequence's weight clip(exp(T x mean over its tokens of log p - log p_start)) "
        "(the authors' code: 1)",
        role=OBJECTIVE,
        check=positive,
        short="T",
        later=True,
    )
    iwsft_max_weight: float = setting(
        16.0,
        "iw-SFT: the largest weight a sequence gets (the authors' code clips to [0, 16])",
        role=OBJECTIVE,
        check=positive,
        short="wmax",
        later=True,
    )
    dpo_beta: float = setting(
        0.1,
        "DPO: beta, the strength of the implicit KL to the starting model (TRL's and the DPO paper's 0.1)",
        role=OBJECTIVE,
        check=positive,
        short="beta",
        later=True,
    )
    lr: float = setting(5e-5, "peak learning rate", check=positive, axis=True)
    adam_beta1: float = setting(0.9, "AdamW beta1", check=below_one)
    adam_beta2: float = setting(0.95, "AdamW beta2", check=below_one)
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and norms)", check=non_negative)
    warmup_ratio: float = setting(0.1, "fraction of steps of linear warmup", check=fraction)
    max_grad_norm: float = setting(1.0, "gradient clipping norm (0 = off)", check=non_negative)
    batch_size: int = setting(
        256, "examples per optimizer step, all ranks together", check=at_least(1), axis=True
    )
    micro_batch_size: int = setting(
        8,
        "the most examples that fit in one forward pass on one rank; the largest micro-batch up to "
        "this that divides each rank's share of --batch-size is used, accumulation makes up the rest",
        check=at_least(1),
        split=True,
    )
    epochs: float = setting(1.0, "passes over the training data", check=positive)
    steps: int | None = setting(None, "optimizer steps (overrides --epochs)", check=at_least(1))
    max_length: int = setting(2048, "maximum tokens of prompt + completion", check=at_least(2))
    overlong: str = setting(
        "truncate",
        "rows over --max-length: cut the completion, drop the row, or stop",
        choices=OVERLONG_POLICIES,
    )
    packing: bool = setting(True, "pack sequences into rows (no padding compute; text backbones only)")
    min_pixels: int | None = setting(
        None, "vision backbones: fewest pixels an image is resized to", check=at_least(1)
    )
    max_pixels: int | None = setting(
        None, "vision backbones: most pixels an image keeps (default: the processor's)", check=at_least(1)
    )
    loss_chunk_size: int = setting(
        1024, "tokens per chunk of the fused LM-head loss; 0 = plain", check=at_least(0)
    )
    lora_rank: int = setting(
        0,
        "LoRA adapters of this rank on every linear layer of the language model, the backbone frozen "
        "(0 = full fine-tuning; the paper's appendix: 8)",
        check=at_least(0),
    )
    lora_alpha: float | None = setting(
        None, "LoRA scaling alpha (default: 2 x --lora-rank; the paper's appendix: 16)", check=positive
    )
    gradient_checkpointing: bool | None = setting(None, "default: on for CUDA", role=RUN)
    compile: bool = setting(
        False,
        "torch.compile each decoder layer (regional: one compile serves every layer); faster steps on "
        "a GPU after a first slow one, last bits of the numbers like another device's",
        role=RUN,
    )
    sharding: str = setting(
        "ddp",
        "under torchrun: ddp (a whole model per rank) or fsdp (FSDP2: weights, gradients and optimizer "
        "state sharded over the ranks, for a model that does not fit one device)",
        role=RUN,
        choices=SHARDING,
    )
    seed: int = setting(0, "seed of the data order and initialization", check=at_least(0), replicate=True)
    save_every: int = setting(
        0, "save a checkpoint every N steps (0 = only at the end)", role=RUN, check=at_least(0)
    )
    resume: bool = setting(
        False, "continue from the last checkpoint in --output-dir", role=RUN, per_method=True
    )
    device: str | None = setting(None, "cpu, cuda or cuda:N (default: cuda if present)", role=RUN)
    progress: bool = setting(True, "show a progress bar", role=RUN)
    eval_every: int = setting(
        0,
        "evaluate the task's test splits (greedy) at step 0, every N steps and at the end, "
        "into eval.jsonl: accuracy-versus-step curves (0 = off)",
        role=RUN,
        check=at_least(0),
    )
    curve_limit: int | None = setting(
        None,
        "--eval-every evaluates the first N examples of each split "
        "(default: all; under harness.experiment: its --eval-limit)",
        role=RUN,
        check=at_least(1),
    )

    def __post_init__(self) -> None:
        check_fields(self)


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


def eval_limit() -> Any:
    """How many examples of each split are evaluated: one declaration for every command."""
    return setting(None, "evaluate the first N examples of each split", check=at_least(1))


def eval_template(default: str | None, default_note: str = "") -> Any:
    """How questions are rendered when a model answers them (evaluation, self-generated data): one
    declaration for every command; ``default_note`` says where an unset value comes from."""
    return setting(
        default,
        "how a task's questions become prompt text when the model answers them: the backbone's chat "
        "template, or a raw template of the paper's math evaluation" + default_note,
        role=RUN,
        choices=PROMPT_TEMPLATES,
    )


def results_dir(default: str, note: str = "") -> Any:
    """The folder of run records: one declaration for the commands that write or read them."""
    return setting(default, "the folder of JSON run records, one per evaluated model" + note, role=RUN)


def leaderboard_dir(default: str) -> Any:
    """The folder of rendered pages: one declaration for the commands that write them."""
    return setting(default, "the folder the markdown pages and plots/ are rendered into", role=RUN)


@dataclass
class LeaderboardConfig:
    """``python -m harness.leaderboard``: the pages and plots, rendered from the records alone."""

    results_dir: str = results_dir("results")
    leaderboard_dir: str = leaderboard_dir("leaderboards")


def dry_run() -> Any:
    """Print instead of run: one declaration for the commands that plan runs."""
    return setting(
        False,
        "print the plan (the resolved configuration, each run and its commands, on one node and on several) and stop",
    )


def like(name: str) -> Any:
    """A field of another command declared as :class:`TrainConfig`'s field ``name`` is: the same
    default, help and check (``--device`` means one thing in every command)."""
    f = TrainConfig.__dataclass_fields__[name]
    marks = {k: v for k, v in f.metadata.items() if k not in ("help", "role", "check", "choices")}
    assert not marks, f"{name} carries training marks {sorted(marks)}; declare it on its own"
    return setting(
        f.default, f.metadata["help"], role=RUN, check=f.metadata["check"], choices=f.metadata["choices"]
    )


@dataclass
class EvalConfig:
    """``python -m harness.evaluate``: one model on one task's evaluation splits."""

    model: str | None = like("model")
    task: str = setting("math-words", "registered task name")
    eval_limit: int | None = eval_limit()
    samples_dir: str | None = setting(None, "write per-sample JSONL here")
    eval_template: str = eval_template("chat")
    problem_file: str | None = setting(
        None, "humaneval tasks: a HumanEval-format JSONL(.gz) file instead of the package's"
    )
    device: str | None = like("device")
    min_pixels: int | None = like("min_pixels")
    max_pixels: int | None = like("max_pixels")
    eval_backend: str = eval_backend()
    generation_backend: str = generation_backend()
    tensor_parallel_size: int = tensor_parallel_size()

    def __post_init__(self) -> None:
        check_fields(self)


# The offline-RL setting's sampling (arXiv 2508.05629, section 4.2): four responses per training
# question from the base model at temperature 1.0; the unset Sampling fields of selfgen take these.
SELFGEN_PROTOCOL = {"temperature": 1.0, "top_p": 1.0, "num_samples": 4}


@dataclass
class SelfgenConfig:
    """``python -m harness.selfgen``: a backbone's own graded samples on a task's training questions."""

    model: str | None = like("model")
    task: str = setting("math-words", "registered task whose training questions are answered and graded")
    output_dir: str = setting(
        "runs/selfgen", "where rows.jsonl, pairs.jsonl, samples.jsonl and selfgen.json go", role=RUN
    )
    train_limit: int | None = like("train_limit")
    eval_template: str = eval_template("chat")
    device: str | None = like("device")
    min_pixels: int | None = like("min_pixels")
    max_pixels: int | None = like("max_pixels")
    generation_backend: str = generation_backend()
    tensor_parallel_size: int = tensor_parallel_size()

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class TokenProbsConfig:
    """``python -m harness.token_probs``: the histogram of p(target) of any checkpoint."""

    model: str | None = like("model")
    task: str = like("task")
    train_data: str | None = like("train_data")
    prompt_template: str = like("prompt_template")
    rows: int = setting(PROB_ROWS, "training rows read", check=at_least(1))
    bins: int = setting(PROB_BINS, "bins over [0, 1]", check=at_least(1))
    max_length: int = like("max_length")
    device: str | None = like("device")

    def __post_init__(self) -> None:
        check_fields(self)


# Hyperparameter presets: only what differs from TrainConfig's defaults (the paper's math recipe).
PRESETS: dict[str, dict[str, Any]] = {
    # The embedded ~3M-parameter model on a 2-core laptop: a few minutes per method.
    # lr 1e-3 and two epochs: at 5e-4 x 1 epoch SFT barely moves the tiny model in the time budget.
    "laptop": {"lr": 1e-3, "batch_size": 32, "micro_batch_size": 32, "epochs": 2.0, "max_length": 512},
    # arXiv 2508.05629, math: exactly TrainConfig's defaults (2e-5 instead of 5e-5 for 8B models).
    "paper-math": {},
    # arXiv 2508.05629, vision: Qwen2.5-VL-3B on WeThink, one epoch, lr 5e-5. The paper does not
    # state the batch for this recipe; 256 as for math. Images up to 1024 x 28 x 28 pixels.
    "paper-vlm": {"micro_batch_size": 4, "max_length": 4096, "max_pixels": 1024 * 28 * 28},
    # arXiv 2508.05629, code: UltraFeedback-style chat rows, one epoch, lr 5e-5, warmup 0.05, batch 16.
    "paper-code": {"batch_size": 16, "micro_batch_size": 4, "warmup_ratio": 0.05},
    # A ~135M pretrained chat model (--model smollm2-135m) on a 2-core laptop: the paper's lr of 5e-5
    # (the tiny model's 1e-3 wrecks a pretrained one: DFT's NLL jumped to 4.9 within 4 steps), one
    # epoch over the first 96 rows in batches of 8. A step of SmolLM2-135M took 12 s on 2 cores (36
    # trained tokens/s), so 12 steps per method; give --train-limit for more.
    "laptop-pretrained": {"batch_size": 8, "max_length": 512, "train_limit": 96},
}
# The preset a packaged model gets when neither --preset nor a recipe names one.
MODEL_PRESETS = {"smollm2-135m": "laptop-pretrained"}


@dataclass
class ExperimentConfig:
    """``python -m harness.experiment``: base, SFT and DFT of one configuration, evaluated and recorded."""

    task: str = setting("math-words", "registered task to train and evaluate", per_cell=True)
    methods: str = setting("base,sft,dft", "comma-separated subset of " + ",".join(METHODS), per_cell=True)
    preset: str = setting(
        "laptop",
        "hyperparameter preset (explicit flags win over it; default: the recipe's, else the packaged "
        "model's, else laptop)",
        choices=tuple(PRESETS),
    )
    recipe: str | None = setting(
        None,
        "a row of the DFT paper's tables: its backbone, data, hyperparameters and evaluation as "
        "defaults (explicit flags win); python -m harness.recipes lists them",
    )
    name: str | None = setting(None, "run folder name under --runs-dir")
    seeds: list[int] | None = setting(
        None,
        "train every method once per seed (each seed its own record; the pages average them with "
        "the seed-to-seed variance) (default: the preset's seed, 0)",
        check=at_least(0),
    )
    runs_dir: str = setting("runs", "checkpoints, logs and samples go here")
    results_dir: str = results_dir(
        "runs/results",
        " (the committed reference records are in results/: give --results-dir results to add to them)",
    )
    leaderboard_dir: str = leaderboard_dir("runs/leaderboards")
    reference_dir: str = setting(
        "results",
        "committed reference records: each record made is compared with the one of its "
        "configuration there ('' = no comparison)",
    )
    eval_limit: int | None = eval_limit()
    eval_template: str | None = eval_template(
        None,
        " (default: --prompt-template, the training one; the paper trained with the chat template "
        "and evaluated with qwen-boxed and the like)",
    )
    eval_backend: str = eval_backend()
    generation_backend: str = generation_backend()
    tensor_parallel_size: int = tensor_parallel_size()
    ood_tasks: str | None = setting(
        None,
        "comma-separated tasks also scored as out-of-domain splits "
        "(default: the task's own, e.g. humaneval for code-lists; '' for none)",
    )
    nproc_per_node: int = setting(1, "training processes (torchrun) on this node", check=at_least(1))
    nnodes: int = setting(
        1,
        "nodes the training runs on: with more than one, each method is first trained by the torchrun "
        "command that --dry-run prints, run on every node, and this command then evaluates and records "
        "(the run folder on a file system all nodes share)",
        check=at_least(1),
    )
    prob_rows: int = setting(
        PROB_ROWS,
        "training rows whose target-token probabilities are histogrammed (0 = off)",
        check=at_least(0),
    )
    redo: bool = setting(
        False,
        "run again and replace the records that exist for these configurations (printing which "
        "scores changed); without it a finished record is reused, one evaluated differently is an "
        "error, and a half-done training continues from its model or last checkpoint",
    )

    dry_run: bool = dry_run()

    def __post_init__(self) -> None:
        check_fields(self)
        if self.seeds is not None:
            repeated = sorted({seed for seed in self.seeds if self.seeds.count(seed) > 1})
            if repeated:
                raise ConfigError(
                    f"--seeds {' '.join(map(str, self.seeds))}: seed {repeated[0]} is given twice"
                )
        unknown = [m for m in self.methods.split(",") if m not in METHODS]
        if unknown:
            raise ConfigError(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(METHODS)}")

    @property
    def method_list(self) -> list[str]:
        return self.methods.split(",")

    @property
    def world_size(self) -> int:
        """Training processes, all nodes together."""
        return self.nnodes * self.nproc_per_node


AXIS_NOTE = ": one or more values, an axis of the grid"  # a sweep's form of a training setting


def axis(name: str) -> Any:
    """A sweep's grid axis: one or more values of :class:`TrainConfig`'s field ``name``, with that
    field's help and check (so ``--lr`` is declared once, whether it takes one value or a list)."""
    f = TrainConfig.__dataclass_fields__[name]
    assert f.metadata.get("axis"), f"{name} is not marked as a sweep axis"
    help_text = f"{f.metadata['help']}{AXIS_NOTE} (default: the preset's)"
    return setting(None, help_text, check=f.metadata["check"])


@dataclass
class ContinuumConfig:
    """``python -m harness.continuum``: one training from a ladder of starting points of increasing
    strength, and at several demonstration-noise rates (:mod:`harness.report.continuum` maps them)."""

    warmup_rows: list[int] = setting(
        [0, 64, 256],
        "the prior-strength ladder: one starting point per K, the backbone after SFT on K rows of the "
        "task that the mapped runs never see (the rows after their --train-limit); 0 is the backbone",
        role=RUN,
        check=at_least(0),
    )
    noise: list[float] = setting(
        [0.0, 0.2, 0.4],
        "--train-noise rates the methods train at, from the backbone itself",
        role=RUN,
        check=below_one,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class SweepConfig:
    """``python -m harness.ablate``: the grid and how to run it; every experiment flag applies too."""

    lr: list[float] | None = axis("lr")
    batch_size: list[int] | None = axis("batch_size")
    method: list[str] = setting(["sft", "dft"], "methods trained in every cell", choices=OBJECTIVES)
    base: bool = setting(True, "also evaluate the base")
    domain: str | None = setting(None, "sweep the domain's training task")
    task: str | None = setting(None, "a registered task (default: math-words)")
    dry_run: bool = dry_run()
    print_commands: bool = setting(False, "print one command per cell and stop")
    cell: int | None = setting(None, "run only this cell of the plan (0-based)", check=at_least(0))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.domain is not None and self.task is not None:
            raise ConfigError("--domain and --task: give one of them")


# --- what the roles say ------------------------------------------------------------------------------


def names(cls: type, *roles: str, **marks) -> tuple[str, ...]:
    """The fields of ``cls`` with one of ``roles`` (any role if none given) and all of ``marks``."""
    return tuple(
        f.name
        for f in fields(cls)
        if (not roles or f.metadata.get("role") in roles)
        and all(f.metadata.get(mark) == value for mark, value in marks.items())
    )


HPARAM_KEYS = names(TrainConfig, HPARAM, OBJECTIVE)  # a record's hparams (with world_size); resume keys
OBJECTIVE_KEYS = frozenset(names(TrainConfig, OBJECTIVE))  # left out of the config id
SWEEP_AXES = names(TrainConfig, axis=True)
REPLICATE_KEYS = frozenset(names(TrainConfig, replicate=True))  # left out of the config id too
# How a global batch is split: never changes the update (the loss is normalized per optimizer step),
# so cells of one grid may differ in it. world_size is the number of ranks a record's hparams add.
BATCH_SPLIT_KEYS = (*names(TrainConfig, split=True), "world_size")
PER_METHOD = frozenset(names(TrainConfig, per_method=True))
PER_CELL = frozenset(names(ExperimentConfig, per_cell=True))
# The objectives' own parameters, by field: (short name in a variant's name, the paper's value,
# the objectives that read it).
OBJECTIVE_PARAMS = {
    f.name: (f.metadata["short"], f.default, objectives.owners_of(f.name))
    for f in fields(TrainConfig)
    if f.metadata["role"] == OBJECTIVE and f.name != "objective"
}
# The parameters added after records were first written: every older record was made at the default.
LATER_DEFAULTS |= {f.name: f.default for f in fields(TrainConfig) if f.metadata.get("later")}


def objective_defaults(objective: str) -> dict[str, Any]:
    """The parameters ``objective`` does not read, at their defaults (what its record keeps).

    >>> sorted(objective_defaults("dft"))[:3], "q" in objective_defaults("q-family")
    (['asft_lambda', 'dpo_beta', 'eaft_alpha'], False)
    """
    return {
        name: default for name, (_, default, owners) in OBJECTIVE_PARAMS.items() if objective not in owners
    }


def check_objective_params(config: TrainConfig, objectives: list[str]) -> None:
    """Refuse, naming the flag, a parameter set away from its default that none of ``objectives``
    reads: it would be silently ignored.

    >>> check_objective_params(TrainConfig(q=0.5), ["sft", "dft"])
    Traceback (most recent call last):
    ...
    harness.errors.ConfigError: --q 0.5 applies to objective q-family only, and none is trained here (sft, dft)
    """
    for name, (_, default, owners) in OBJECTIVE_PARAMS.items():
        value = getattr(config, name)
        if value != default and not set(owners) & set(objectives):
            raise ConfigError(
                f"{flag(name)} {value:g} applies to objective {', '.join(owners)} only, and none is trained "
                f"here ({', '.join(objectives) or 'none'})"
            )


# --- the batch split -------------------------------------------------------------------------------


def split_batch(batch_size: int, max_micro_batch_size: int, world: int) -> tuple[int, int]:
    """``(micro-batch size, accumulation steps)`` for a global ``batch_size`` over ``world`` ranks
    when at most ``max_micro_batch_size`` examples fit in one forward pass: the largest micro-batch
    that fits and divides each rank's share, so ``micro x accumulation x world == batch_size``.

    >>> split_batch(256, 8, 4), split_batch(48, 32, 1), split_batch(7, 4, 1)
    ((8, 8), (24, 2), (1, 7))
    """
    if batch_size < world:
        raise ConfigError(
            f"--batch-size {batch_size} is smaller than the {world} ranks: every rank needs at least one example"
        )
    if batch_size % world:
        raise ConfigError(f"--batch-size {batch_size} does not split evenly over {world} ranks")
    share = batch_size // world
    micro = max(d for d in range(1, min(share, max_micro_batch_size) + 1) if share % d == 0)
    return micro, share // micro


# --- the flag builder --------------------------------------------------------------------------------

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the flag (not the 40-line usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``list[float] | None`` -> list[float]."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    return annotation


def add_arguments(parser, cls: type, defaults: dict[str, Any] | None = None, exclude=frozenset()) -> None:
    """One ``--field-name`` flag per field of ``cls`` (but ``exclude``), with its help, choices and
    default (``defaults`` overrides, e.g. a preset's values). ``bool`` fields get ``--no-...``;
    ``list[...]`` fields take one or more values."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not MISSING else None
        if f.default_factory is not MISSING:
            default = f.default_factory()
        if defaults and f.name in defaults:
            default = defaults[f.name]
        kind = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if kind is bool:
            parser.add_argument(
                flag(f.name), action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
            continue
        nargs = None
        if typing.get_origin(kind) is list:
            kind, nargs = typing.get_args(kind)[0], "+"
        parser.add_argument(
            flag(f.name),
            type=_typed(kind, flag(f.name)),
            nargs=nargs,
            default=default,
            choices=choices,
            help=help_text if default is None else f"{help_text} (default: {default})",
        )


def _typed(kind: type, name: str) -> Callable[[str], Any]:
    """An argparse type whose error names the flag: ``--lr takes numbers; 'x' is not one``."""
    if kind is str:
        return str

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise argparse.ArgumentTypeError(f"{name} takes {what}; {text!r} is not one") from None

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def to_flags(config) -> list[str]:
    """The command line that parses back to ``config`` (the inverse of :func:`add_arguments`; a
    ``None`` value is left to its default). ``torchrun`` gets a training configuration this way.

    >>> to_flags(TrainConfig(lr=1e-3, packing=False))[:4]
    ['--output-dir', 'runs/train', '--task', 'math-words']
    >>> "--no-packing" in to_flags(TrainConfig(packing=False))
    True
    """
    flags = []
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            flags.append(flag(f.name) if value else "--no-" + flag(f.name)[2:])
        elif isinstance(value, list):
            flags += [flag(f.name), *map(str, value)]
        else:
            flags += [flag(f.name), str(value)]
    return flags


def take(args: dict[str, Any], cls: type[T], skip=frozenset(), **fixed) -> T:
    """Build ``cls`` from the parsed values of its fields (popped from ``args``; but ``skip``) and ``fixed``."""
    values = {f.name: args.pop(f.name) for f in fields(cls) if f.name not in skip and f.name not in fixed}
    return cls(**values, **fixed)


def preset_of(argv: list[str] | None, default: str = "laptop", by_model: bool = True) -> dict[str, Any]:
    """The defaults that ``argv`` asks for, read by a parser without -h (so that ``--help`` shows them):
    the preset's values, then the recipe's (``--recipe``). The preset is ``--preset``, else the
    recipe's, else the packaged model's (:data:`MODEL_PRESETS`; not with ``by_model=False``, as
    ``harness.train`` reads it: under torchrun it gets every value as a flag, and a preset filling
    what was left unset there would train something other than what was planned), else ``default``;
    explicit flags still win over all of it. A recipe's values include ``preset`` (the name)."""
    peek = argparse.ArgumentParser(add_help=False)
    for name in ("--preset", "--recipe", "--model"):
        peek.add_argument(name)
    given = peek.parse_known_args(argv)[0]
    chosen = recipe(given.recipe).values if given.recipe else {}
    model = given.model or chosen.get("model")
    name = (
        given.preset or chosen.get("preset") or (MODEL_PRESETS.get(model, default) if by_model else default)
    )
    if name not in PRESETS:
        raise ConfigError(f"--preset {name!r}: valid presets are {', '.join(PRESETS)}")
    return {**PRESETS[name], **chosen, "preset": name}


def parse(cls: type[T], argv: list[str] | None = None, description: str = "", defaults=None) -> T:
    """``cls`` from a command line of its own fields (the builders' configs use it).

    >>> @dataclass
    ... class Config:
    ...     lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    ...     steps: int | None = None
    ...     packing: bool = True
    >>> parse(Config, ["--lr", "2e-4", "--no-packing"])
    Config(lr=0.0002, steps=None, packing=False)
    """
    parser = Parser(description=description)
    add_arguments(parser, cls, defaults)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return cls(**vars(args))
