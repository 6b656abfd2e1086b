"""The harness's scorers as Hugging Face ``evaluate`` metric modules, loaded by local path, offline.

Each module here is a file that ``evaluate.load(path)`` reads (no hub access): ``math_equivalence``
(final answers compared as Math-Verify compares them, through :func:`tasks.math_grading.grade_math`),
``code_pass_at_k`` (programs run in the harness's sandbox against hidden ``check(candidate)`` tests,
unbiased pass@k of :func:`harness.stats.pass_at_k`) and ``vqa_exact_match`` (easy-vqa's one-word
answers, normalized as :class:`tasks.easy_vqa.EasyVQA` scores them). Each calls the very functions
the harness grades with, so a number from ``evaluate`` and one from a record come from one
implementation.

>>> sorted(METRICS)
['code_pass_at_k', 'math_equivalence', 'vqa_exact_match']
>>> path("math_equivalence").endswith("harness/metrics/math_equivalence.py")
True
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
METRICS = ("math_equivalence", "code_pass_at_k", "vqa_exact_match")


def path(name: str) -> str:
    """The file ``evaluate.load`` takes for the metric ``name``."""
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; metrics: {', '.join(METRICS)}")
    return str(FOLDER / f"{name}.py")


def load(name: str, **kwargs):
    """``evaluate.load`` of the metric ``name`` (``kwargs`` as ``evaluate.load`` takes them)."""
    import evaluate  # imported here: it takes seconds, and only this function needs it

    return evaluate.load(path(name), **kwargs)
