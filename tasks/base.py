"""What every task provides: a domain, named splits, a loader, a prompt/completion view and a scorer.

A task is read by the rest of the harness through this class only. Examples are plain dicts that
carry at least an ``id``; ``messages(example)`` turns one into the conversational format that chat
templates and other tools understand::

    {"prompt": [{"role": "user", "content": "..."}],
     "completion": [{"role": "assistant", "content": "..."}]}

>>> from tasks import get
>>> task = get("math-words")
>>> [s.name for s in task.splits][:2]
['train', 'test']
>>> example = task.load("test", limit=1)[0]
>>> task.score(example, task.messages(example)["completion"][0]["content"])
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from tasks.sources import digest, local_copy

SplitRole = Literal["train", "test", "ood"]


@dataclass(frozen=True)
class Split:
    """One split of a task: ``train`` is trained on, ``test`` is in-domain, ``ood`` shifts something."""

    name: str
    role: SplitRole
    description: str


class Task:
    """Base class of all tasks. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    domain: ClassVar[str]  # "math" | "code" | "vlm": which leaderboard the task lands on
    splits: ClassVar[tuple[Split, ...]]
    max_new_tokens: ClassVar[int] = 512  # generation budget that fits this task's completions
    # The benchmark's own evaluation protocol, the sampling settings (temperature, top_p,
    # num_samples, max_new_tokens) used where the command line leaves them unset; empty: greedy, one
    # completion (pass@1 by greedy decoding, as code and most VLM benchmarks report).
    protocol: ClassVar[dict[str, Any]] = {}
    # The column name the paper's tables give the benchmark ("MATH500"); a leaderboard table whose
    # columns are all such benchmarks reads like the paper's.
    title: ClassVar[str | None] = None
    # Other registered tasks that the experiment also scores a model of this task on, as
    # out-of-domain splits (code-lists -> humaneval).
    ood_tasks: ClassVar[tuple[str, ...]] = ()
    # Whether completions can be graded against the example (False: training data only, such as
    # preference-rated chat responses, scored on other tasks).
    graded: ClassVar[bool] = True
    # The solution styles the task can write its training completions in, by name: the first is
    # the one ``messages`` gives, the others what ``restyle`` rewrites an example into (the same
    # correct answers worded and laid out otherwise: ``--train-style``, the continuum's off-style
    # axis). Empty: the task has one style of its own and no other.
    styles: ClassVar[tuple[str, ...]] = ()

    def restyle(self, example: dict[str, Any], style: str) -> dict[str, Any]:
        """``example`` with its solution written in ``style``, one of :attr:`styles` (a
        ``ValueError`` naming them otherwise); the gold answer and the question are unchanged."""
        raise ValueError(self.unknown_style(style))

    def unknown_style(self, style: str) -> str:
        """The one line that refuses a style the task does not have."""
        have = f"its styles are {', '.join(self.styles)}" if self.styles else "it has no other style"
        return f"task {self.name} has no solution style {style!r}: {have}"

    def data_digest(self) -> str | None:
        """What the local files this task reads its examples from hold (:func:`tasks.sources.digest`
        of a ``$HARNESS_DATA`` copy), or None where it reads none (generated, packaged or hub data): a
        record's evaluation keeps it, so an edited copy is evaluated anew, never reused."""
        copy = local_copy(self.name)
        return None if copy is None else digest(copy)

    def deciding_spans(self, completion: str) -> list[tuple[int, int]] | None:
        """The character spans of a training completion whose tokens decide its grade (a math
        solution's step results and final answer), for the strength measured on them alone
        (:mod:`harness.token_probs`); None where the task does not say."""
        return None

    def lacking(self) -> str | None:
        """What this machine lacks to grade the task (a language's toolchain), in one line naming
        the packages; None when nothing. Commands check it before any work."""
        return None

    def split(self, name: str) -> Split:
        for split in self.splits:
            if split.name == name:
                return split
        names = ", ".join(s.name for s in self.splits)
        raise ValueError(f"task {self.name!r} has no split {name!r}; its splits are: {names}")

    @property
    def train_split(self) -> str:
        for split in self.splits:
            if split.role == "train":
                return split.name
        raise ValueError(f"task {self.name!r} has no train split; it can only be evaluated")

    @property
    def eval_splits(self) -> list[str]:
        return [s.name for s in self.splits if s.role != "train"]

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the examples of ``split`` (the first ``limit`` of them, in a fixed order)."""
        raise NotImplementedError

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Return ``{"prompt": [...], "completion": [...]}`` for ``example``."""
        raise NotImplementedError

    def extract(self, completion: str) -> str:
        """The part of a model's completion that is graded (an answer, a program)."""
        return completion

    def score(self, example: dict[str, Any], completion: str) -> float:
        """Score one completion in [0, 1]."""
        raise NotImplementedError

    def grade(self, pairs: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
        """Score many ``(example, completion)`` pairs: ``{"score": float, ...}`` each, in order.

        Tasks that run programs override this to run them in parallel and to add what a reader of the
        samples needs (``verdict``, ``stderr``, ``program``)."""
        return [{"score": self.score(example, completion)} for example, completion in pairs]


def load_generated(
    task: Task,
    generate: Callable[[str, set[str]], list[dict[str, Any]]],
    split: str,
    limit: int | None,
    key: str = "question",
) -> list[dict[str, Any]]:
    """``task.load`` for splits generated from fixed seeds by ``generate(split, exclude)``: an
    evaluation split never repeats a train example (same ``example[key]``), and every split is
    generated whole, then cut, so a limit always returns a prefix."""
    task.split(split)  # the ValueError naming the splits
    train = generate(task.train_split, set())
    if split == task.train_split:
        return train[:limit]
    return generate(split, {example[key] for example in train})[:limit]
