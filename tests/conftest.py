"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A ``$HARNESS_DATA`` folder for local copies of hub datasets, with the hub made unreachable:
    a test that would download fails loudly instead."""
    from tasks import sources

    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path))

    def no_hub(source):
        raise ConnectionError(f"offline (the test would have fetched {source.hub_id})")

    monkeypatch.setattr(sources, "_from_hub", no_hub)
    return tmp_path


def write_jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


# The start of a script that dies as a preempted node does, right after the first batch of completions
# is kept (harness.progress): no cleanup, no flush. The resume tests append the call to make.
DIE_AFTER_FIRST_BATCH = """
import os, signal, sys
from harness import progress
from harness.config import Evaluation, Sampling

append = progress.SamplesProgress.append
def append_then_die(self, indices, completions):
    append(self, indices, completions)
    os.kill(os.getpid(), signal.SIGKILL)
progress.SamplesProgress.append = append_then_die
"""


def math_words_pairs(n: int) -> list[dict]:
    """Preference pairs on math-words' first ``n`` training questions: the reference solution chosen,
    the next question's solution (a wrong answer here) rejected."""
    from tasks.math_words import MathWords

    task = MathWords()
    examples = task.load("train", limit=n)
    pairs = []
    for i, example in enumerate(examples):
        conversation = task.messages(example)
        wrong = task.messages(examples[(i + 1) % n])["completion"]
        pairs.append(
            {"prompt": conversation["prompt"], "chosen": conversation["completion"], "rejected": wrong}
        )
    return pairs


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded tiny backbone's tokenizer (ChatML), loaded once per session."""
    from harness.models import load_tokenizer

    return load_tokenizer("tiny")


# Modules whose doctest examples load a model or run the sandbox: in the slow tier with the tests
# that do the same (the quick tier, `nox -s tests-quick`, is everything else).
SLOW_DOCTESTS = {
    "harness.trainer",
    "harness.evaluation",
    "harness.offline",
    "harness.generate",
    "harness.probabilities",
    "harness.lora",
    "harness.data.images",
    "harness.sandbox.process",
    "harness.sandbox.check",
}


def pytest_collection_modifyitems(config, items):
    """Doctests of :data:`SLOW_DOCTESTS` are slow; `gpu` tests need CUDA: skipped, with the reason
    shown, where there is none."""
    import torch

    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
