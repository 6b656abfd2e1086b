"""The explicit task registry: ``tasks.get(name)`` returns a task instance.

Adding a task: write one module in this folder with a ``Task`` subclass, import it here and add
it to ``TASKS``. No plugin discovery, so the list below is the whole truth.

>>> import tasks
>>> tasks.get("math-words").domain
'math'
>>> tasks.get("math-word")
Traceback (most recent call last):
...
KeyError: "unknown task 'math-word'; did you mean 'math-words'? Known tasks: aime24, amc23, code-lists, ..."
"""

from __future__ import annotations

import difflib
import inspect

from tasks.base import Split, Task
from tasks.code_lists import CodeLists
from tasks.easy_vqa import EasyVQA
from tasks.evalplus import HumanEvalPlus, MBPPPlus
from tasks.humaneval import HumanEval, HumanEvalComplete
from tasks.math_benchmarks import BENCHMARKS as MATH_BENCHMARKS
from tasks.math_words import MathWords
from tasks.multipl_e import LANGUAGE_TASKS as MULTIPL_E
from tasks.numina_math import NuminaMathCoT, NuminaMathCoTRandom
from tasks.ultrafeedback import UltraFeedback
from tasks.vision_benchmarks import BENCHMARKS as VISION_BENCHMARKS
from tasks.vision_benchmarks import WeThink
from tasks.visual_math import VisualMath

TASKS: dict[str, type[Task]] = {
    MathWords.name: MathWords,
    CodeLists.name: CodeLists,
    HumanEval.name: HumanEval,
    HumanEvalComplete.name: HumanEvalComplete,
    HumanEvalPlus.name: HumanEvalPlus,
    MBPPPlus.name: MBPPPlus,
    **{task.name: task for task in MULTIPL_E.values()},
    VisualMath.name: VisualMath,
    EasyVQA.name: EasyVQA,
    **{benchmark.name: benchmark for benchmark in MATH_BENCHMARKS},
    NuminaMathCoT.name: NuminaMathCoT,
    NuminaMathCoTRandom.name: NuminaMathCoTRandom,
    UltraFeedback.name: UltraFeedback,
    **{benchmark.name: benchmark for benchmark in VISION_BENCHMARKS},
    WeThink.name: WeThink,
}


def get(name: str, **options) -> Task:
    """Return a new instance of the task registered as ``name``, made with ``options`` (a HumanEval
    task takes ``problem_file``); an option the task does not take is a ``TypeError``.

    >>> get("math-words", problem_file="x.jsonl")
    Traceback (most recent call last):
    ...
    TypeError: task math-words takes no option problem_file
    """
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise KeyError(f"unknown task {name!r}; {hint}Known tasks: {', '.join(sorted(TASKS))}")
    cls = TASKS[name]
    taken = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - taken)
    if unknown:
        raise TypeError(f"task {name} takes no option {', '.join(unknown)}")
    return cls(**options)


def for_domain(domain: str) -> str:
    """The training task of ``domain``: the first registered task of that domain with a train split.

    >>> for_domain("math"), for_domain("code"), for_domain("vlm")
    ('math-words', 'code-lists', 'visual-math')
    """
    for name, cls in TASKS.items():
        if cls.domain == domain and any(split.role == "train" for split in cls.splits):
            return name
    domains = sorted({cls.domain for cls in TASKS.values()})
    raise KeyError(f"no trainable task in domain {domain!r}; domains: {', '.join(domains)}")


__all__ = ["TASKS", "Split", "Task", "for_domain", "get"]
