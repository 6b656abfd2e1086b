"""The training settings: :class:`TrainConfig` (every field a flag, with its role), what the roles
say (a record's hyperparameters, the config id's keys, the sweep axes, the objectives' parameters),
the settings added after records existed, and the split of the global batch.

>>> split_batch(48, 32, 1)
(24, 2)
>>> "lr" in HPARAM_KEYS, "objective" in OBJECTIVE_KEYS, "device" in HPARAM_KEYS
(True, True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from harness import objectives
from harness.config.checks import (
    HPARAM,
    OBJECTIVE,
    RUN,
    at_least,
    below_one,
    check_fields,
    field_names,
    flag,
    fraction,
    non_negative,
    open_fraction,
    positive,
    setting,
)
from harness.errors import ConfigError

# The training objectives (harness.losses.Objective). The experiment and the sweep train SFT and DFT
# unless --methods names others.
OBJECTIVES = objectives.NAMES  # the table of harness.objectives, in its order
METHODS = (objectives.BASE, *OBJECTIVES)  # the untouched backbone, evaluated only, then the objectives
OVERLONG_POLICIES = ("truncate", "drop", "error")
SHARDING = ("ddp", "fsdp")  # how torchrun ranks hold the model: harness.sharding
# How a task's question becomes prompt text: the backbone's chat template, or one of the raw prompt
# templates of the paper's evaluation (their texts: tasks/prompts.py; a test keeps the two in step).
EVAL_BACKENDS = ("harness", "lm-eval")
GENERATION_BACKENDS = ("hf", "vllm")  # what generates the harness's completions: harness.vllm_engine
PROMPT_TEMPLATES = ("chat", "qwen-boxed", "llama-base-boxed", "deepseek-math")
# The embedded model a domain trains when --model is not given; every other domain: "tiny".
DOMAIN_MODELS = {"vlm": "tiny-vl"}
# The token-probability histogram (harness.token_probs): training rows read, bins over [0, 1].
PROB_ROWS, PROB_BINS = 256, 20
# The label of a position that is not trained (cross-entropy's ignore_index): the data layer writes
# it on the prompt and padding, the losses and the token histogram skip it.
IGNORE_INDEX = -100


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
    train_style: str | None = setting(
        None,
        "write the task's training solutions in this style, one of the task's own (default: the "
        "first, what its splits hold); another is off-style demonstrations: the same correct "
        "answers, worded and laid out otherwise",
        later=True,
    )
    prompt_template: str = setting(
        "chat",
        "how the task's questions become prompt text in training: the backbone's chat template, or a "
        "raw template of the paper's math evaluation",
        choices=PROMPT_TEMPLATES,
    )
    objective: str = setting(
        objectives.BASELINE, "training objective", role=OBJECTIVE, choices=OBJECTIVES, per_method=True
    )
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


def training_setting(name: str) -> Any:
    """A field of another command declared as :class:`TrainConfig`'s field ``name`` is: the same
    default, help and check (``--device`` means one thing in every command)."""
    f = TrainConfig.__dataclass_fields__[name]
    marks = {k: v for k, v in f.metadata.items() if k not in ("help", "role", "check", "choices")}
    assert not marks, f"{name} carries training marks {sorted(marks)}; declare it on its own"
    return setting(
        f.default, f.metadata["help"], role=RUN, check=f.metadata["check"], choices=f.metadata["choices"]
    )


AXIS_NOTE = ": one or more values, an axis of the grid"  # a sweep's form of a training setting


def axis(name: str) -> Any:
    """A sweep's grid axis: one or more values of :class:`TrainConfig`'s field ``name``, with that
    field's help and check (so ``--lr`` is declared once, whether it takes one value or a list)."""
    f = TrainConfig.__dataclass_fields__[name]
    assert f.metadata.get("axis"), f"{name} is not marked as a sweep axis"
    help_text = f"{f.metadata['help']}{AXIS_NOTE} (default: the preset's)"
    return setting(None, help_text, check=f.metadata["check"])


# --- what the roles say ------------------------------------------------------------------------------


HPARAM_KEYS = field_names(TrainConfig, HPARAM, OBJECTIVE)  # a record's hparams (with world_size); resume keys
OBJECTIVE_KEYS = frozenset(field_names(TrainConfig, OBJECTIVE))  # left out of the config id
SWEEP_AXES = field_names(TrainConfig, axis=True)
REPLICATE_KEYS = frozenset(field_names(TrainConfig, replicate=True))  # left out of the config id too
# How a global batch is split: never changes the update (the loss is normalized per optimizer step),
# so cells of one grid may differ in it. world_size is the number of ranks a record's hparams add.
BATCH_SPLIT_KEYS = (*field_names(TrainConfig, split=True), "world_size")
PER_METHOD = frozenset(field_names(TrainConfig, per_method=True))


# The objectives' own parameters, by field: (short name in a variant's name, the paper's value,
# the objectives that read it).
class ObjectiveParam(NamedTuple):
    """One objective parameter: its short name in a variant's label (``floor``), its paper's value,
    and the objectives that read it."""

    short: str
    default: Any
    owners: tuple[str, ...]


OBJECTIVE_PARAMS = {
    f.name: ObjectiveParam(f.metadata["short"], f.default, objectives.owners_of(f.name))
    for f in fields(TrainConfig)
    if f.metadata["role"] == OBJECTIVE and f.name != "objective"
}
# The parameters added after records were first written: every older record was made at the default.
# Settings added after records were first written, with the value every older record and checkpoint
# was made with (the only one there was): filled in where one is read, and left out of the config id
# at that value, so the records made before keep their identity and their reference comparisons.
# Those declared since carry the mark ``later``; the first three predate the mark.
LATER_DEFAULTS = {"prompt_template": "chat", "lora_rank": 0, "lora_alpha": None} | {
    f.name: f.default for f in fields(TrainConfig) if f.metadata.get("later")
}  # of hparams
# Not a setting but part of a run's identity: what its training file holds (harness.plan.hparams_of),
# none for rows that are generated or packaged, as they were for every record made before it.
LATER_DEFAULTS["train_data_sha256"] = None
LATER_EVALUATION_DEFAULTS = {"prompt_template": "chat"}  # of a record's ``evaluation``


def objective_defaults(objective: str) -> dict[str, Any]:
    """The parameters ``objective`` does not read, at their defaults (what its record keeps).

    >>> sorted(objective_defaults("dft"))[:3], "q" in objective_defaults("q-family")
    (['asft_lambda', 'dpo_beta', 'eaft_alpha'], False)
    """
    return {name: param.default for name, param in OBJECTIVE_PARAMS.items() if objective not in param.owners}


def check_objective_params(config: TrainConfig, objectives: list[str]) -> None:
    """Refuse, naming the flag, a parameter set away from its default that none of ``objectives``
    reads: it would be silently ignored.

    >>> check_objective_params(TrainConfig(q=0.5), ["sft", "dft"])
    Traceback (most recent call last):
    ...
    harness.errors.ConfigError: --q 0.5 applies to objective q-family only, and none is trained here (sft, dft)
    """
    for name, param in OBJECTIVE_PARAMS.items():
        value = getattr(config, name)
        if value != param.default and not set(param.owners) & set(objectives):
            raise ConfigError(
                f"{flag(name)} {value:g} applies to objective {', '.join(param.owners)} only, and none is trained "
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
