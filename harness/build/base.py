"""Build the embedded tiny base model: tokenizer, Qwen2 weights and a report of what it knows.

``nox -s build-base`` (``python -m harness.build.base``) regenerates ``harness/assets/tiny-qwen2``
from nothing, deterministically (same bytes for the same torch version and thread count):

1. writes the synthetic corpus (``harness.build.corpus``), avoiding every evaluation question;
2. trains a byte-level BPE tokenizer on it (digits split one by one, ChatML special tokens);
3. pretrains a small Qwen2-architecture causal LM on the corpus with next-token prediction;
4. measures held-out NLL and greedy accuracy on the math task for the pretrained model and for an
   untrained model of the same shape, and writes them to ``base_report.json``.

>>> from harness.build.base import BuildConfig
>>> BuildConfig().layers
4
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tqdm import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2_PRETOKENIZE_REGEX

from harness import numerics
from harness.build import corpus
from harness.config import Evaluation
from harness.config import parse as parse_flags
from harness.evaluation import evaluate_task
from harness.files import replace_folder
from harness.models import EMBEDDED
from tasks import get

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = [corpus.END_OF_TEXT, corpus.IM_START, corpus.IM_END]


@dataclass
class BuildConfig:
    out: str = str(EMBEDDED["tiny"])
    seed: int = 0
    documents: int = 60_000
    vocab_size: int = 1024
    seq_len: int = 256
    hidden: int = 256
    layers: int = 4
    heads: int = 8
    kv_heads: int = 2
    intermediate: int = 768
    steps: int = 600
    batch: int = 32
    lr: float = 3e-3
    threads: int = 2
    report: bool = True


def avoid_set() -> set[str]:
    """Every evaluation question of the embedded math task: kept out of the corpus."""

    task = get("math-words")
    return {ex["question"] for split in task.eval_splits for ex in task.load(split)}


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    # Exactly the normalizer and pre-tokenizer that transformers' Qwen2Tokenizer installs when it loads
    # the saved folder (it replaces whatever tokenizer.json says): trained with any other, merges such
    # as newline + indentation exist in the vocabulary but are never produced at run time. Its regex
    # also splits digits one by one, so arithmetic is learnable digit by digit.
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=corpus.IM_END,
        pad_token=corpus.END_OF_TEXT,
        additional_special_tokens=[corpus.IM_START],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def check_tokenizers_agree(trained, loaded, texts: list[str]) -> None:
    """The reloaded tokenizer splits every text as the trained one did and decodes it back whole."""
    for text in texts:
        ids = loaded(text, add_special_tokens=False)["input_ids"]
        if ids != trained(text, add_special_tokens=False)["input_ids"] or loaded.decode(ids) != text:
            raise RuntimeError(f"the saved tokenizer does not reproduce corpus text {text[:60]!r}")


def make_model(config: BuildConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    torch.manual_seed(config.seed)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden,
        intermediate_size=config.intermediate,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(model_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def token_stream(tokenizer, texts: list[str], seq_len: int) -> torch.Tensor:
    """All documents, each followed by <|endoftext|>, cut into rows of ``seq_len`` tokens."""
    ids: list[int] = []
    eot = tokenizer.convert_tokens_to_ids(corpus.END_OF_TEXT)
    for encoded in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(eot)
    rows = len(ids) // seq_len
    return torch.tensor(ids[: rows * seq_len]).view(rows, seq_len)


@torch.no_grad()
def heldout_nll(model, rows: torch.Tensor, batch: int = 64) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, rows.size(0), batch):
        chunk = rows[start : start + batch]
        out = model(input_ids=chunk, labels=chunk)
        n = chunk.numel() - chunk.size(0)
        total += out.loss.item() * n
        count += n
    return total / count


def pretrain(model, rows: torch.Tensor, config: BuildConfig) -> list[float]:
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, config.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, config.steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    losses = []
    model.train()
    order = torch.randperm(rows.size(0), generator=generator)
    bar = tqdm(range(config.steps), desc="pretrain", mininterval=5)
    for step in bar:
        start = (step * config.batch) % max(1, rows.size(0) - config.batch)
        batch = rows[order[start : start + config.batch]]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


def task_accuracy(model_dir: str, task: str, limit: int = 200) -> dict[str, float]:
    """Greedy accuracy on each evaluation split of ``task`` (``limit`` examples each)."""

    summary = evaluate_task(model_dir, task, Evaluation(limit=limit))
    return {split: round(score["value"], 4) for split, score in summary.items()}


@contextmanager
def deterministic(threads: int):
    """Same thread count, deterministic kernels and the run's numerics (pinned by default: torch's
    oneDNN path off too, :func:`harness.numerics.pin_torch`): same floating-point sums, same bytes."""
    numerics.pin_torch()
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def build(config: BuildConfig) -> dict:
    """Build the model folder at ``config.out``; returns the report."""
    with deterministic(config.threads):
        return _build(config)


def _build(config: BuildConfig) -> dict:
    started = time.time()
    avoid = avoid_set()
    texts = corpus.documents(config.documents, seed=config.seed, avoid=avoid)
    heldout_texts = corpus.documents(500, seed=config.seed + 1, avoid=avoid)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then swap: a failed build never leaves a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    try:
        trained = train_tokenizer(texts, config.vocab_size)
        trained.save_pretrained(staging)
        model = make_model(config, trained)
        model.config.save_pretrained(staging)  # with config.json there, the tokenizer loads as users get it
        # Pretrain on the tokens the saved tokenizer gives when it is loaded, as every user of it will.
        tokenizer = AutoTokenizer.from_pretrained(staging)
        check_tokenizers_agree(trained, tokenizer, texts[:300])
        rows = token_stream(tokenizer, texts, config.seq_len)
        heldout = token_stream(tokenizer, heldout_texts, config.seq_len)
        params = sum(p.numel() for p in model.parameters())
        print(f"corpus: {len(texts)} documents, {rows.numel()} tokens; model: {params / 1e6:.2f}M parameters")
        losses = pretrain(model, rows, config)
        model.save_pretrained(staging)
        report = {
            "config": asdict(config) | {"out": out.name},
            "parameters": params,
            "corpus_tokens": rows.numel(),
            "final_train_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
            "heldout_nll": {"pretrained": round(heldout_nll(model, heldout), 4)},
        }
        untrained = make_model(config, tokenizer)
        report["heldout_nll"]["untrained"] = round(heldout_nll(untrained, heldout), 4)
        if config.report:
            untrained_dir = Path(tempfile.mkdtemp(prefix=".untrained-", dir=out.parent))
            untrained.save_pretrained(untrained_dir)
            tokenizer.save_pretrained(untrained_dir)
            report["math_words_greedy_accuracy"] = {
                "pretrained": task_accuracy(str(staging), "math-words"),
                "untrained": task_accuracy(str(untrained_dir), "math-words"),
            }
            shutil.rmtree(untrained_dir)
        report["build_seconds"] = round(time.time() - started, 1)
        (staging / "base_report.json").write_text(json.dumps(report, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(out, staging)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    build(parse_flags(BuildConfig, description=__doc__.split("\n\n")[0]))
