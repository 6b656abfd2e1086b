r"""code-lists: write a small Python function over a list of integers from a one-sentence spec.

Each problem names a function and its argument and says what it returns; the answer is the function
in a fenced ``python`` block. It is graded by running the program in the sandbox against hidden
tests (inputs chosen per problem, expected values computed by running the reference solution here,
never sent to the program): see :mod:`harness.sandbox.check`. A ~3M-parameter model can learn the
in-domain task because each operation family has one code shape; the ood splits shift one thing.
Two-constant compositions (``greater-then-mul``: keep above ``j``, multiply by ``k``) are the hard
part of the in-domain task: the model must put each constant where the spec says.

>>> from tasks.code_lists import CodeLists
>>> record = CodeLists().load("train", limit=1)[0]
>>> print(record["question"])
Write a Python function transform(data) that returns the sum of the elements of data after adding 6 to each.
>>> print(record["solution"])
def transform(data):
    return sum([x + 6 for x in data])
<BLANKLINE>
>>> record["entry_point"], record["tests"][1]
('transform', {'args': [[8, 3, 9, 3, 4]], 'expected': 57})

Splits (families are listed in ``FAMILIES``); the OOD splits are a ladder from the nearest shift to
the farthest, chosen from the base's and SFT's scores only (never DFT's) so that the near one is
measurable. The embedded base scores 0 on every split (it has never seen the task's fenced-answer
format); scores of an SFT run (laptop preset, seed 0) when the splits were chosen:

* ``train`` (2000): one operation of a ``SEEN`` family (map, filter or reduce) or a ``COMPOSED``
  pair (filter then map or reduce; drawn twice as often as a family of ``SEEN``), constants 1..8.
  An earlier draft trained on ``SEEN`` alone and scored 100% in-domain: at the ceiling, where no
  method can be better; with only half as many compositions it scored 95.5%.
* ``test`` (200): the train distribution, other problems (SFT 68.5: off the ceiling; the
  two-constant compositions are where it fails).
* ``ood-compose`` (200): ``RECOMPOSED``, seen operations composed in ways train never composes them
  (add after a filter, a sum of products, the minimum above a bound): the near rung (SFT 36.0).
* ``ood-constants`` (200): the train distribution with constants 9..20, never in train's specs
  (SFT 3.0). (Unseen function and argument names were tried as the nearest rung and dropped: SFT
  scored 0, writing the names it was trained on. A rung of ``UNSEEN`` operations, known only from
  the base's pretraining code, was dropped too: it was to ask whether fine-tuning keeps that prior,
  but the base, which has never seen the task's fenced-answer format, and SFT scored 0 on it with
  every seed, so it measured nothing and cost a tenth of ``nox -s train-code``.)
* ``humaneval`` (an OOD task of this one, :mod:`tasks.humaneval`): the far rung, real problems (0
  for every model here; it stays as the far shift).

Every split is generated from a fixed seed; test and ood questions never occur in train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from harness.sandbox.check import CallTests
from tasks.base import Split, load_generated
from tasks.code_grading import CodeTask, extract_code

INSTRUCTION = "Answer with the function in a ```python code block."
FUNCTION_NAMES = ("solve", "process", "compute", "transform", "result", "answer", "run", "apply")
VARIABLES = ("xs", "nums", "values", "items", "data")


@dataclass(frozen=True)
class Family:
    """One operation: spec phrasings and the code body, both with ``{v}`` (the list) and ``{k}``/``{j}``
    (constants); ``nonempty`` marks operations undefined on an empty list (max, min)."""

    name: str
    specs: tuple[str, ...]
    body: str
    constants: int = 0
    nonempty: bool = False


def _f(name, specs, body, constants=0, nonempty=False) -> Family:
    return Family(name, tuple(specs), body, constants, nonempty)


SEEN = (
    _f(
        "add",
        ["returns a new list with {k} added to each element of {v}", "adds {k} to every element of {v}"],
        "[x + {k} for x in {v}]",
        1,
    ),
    _f(
        "sub",
        [
            "returns a new list with {k} subtracted from each element of {v}",
            "subtracts {k} from every element of {v}",
        ],
        "[x - {k} for x in {v}]",
        1,
    ),
    _f(
        "mul",
        [
            "returns a new list with each element of {v} multiplied by {k}",
            "multiplies every element of {v} by {k}",
        ],
        "[x * {k} for x in {v}]",
        1,
    ),
    _f(
        "greater",
        ["returns the elements of {v} that are greater than {k}", "keeps the elements of {v} above {k}"],
        "[x for x in {v} if x > {k}]",
        1,
    ),
    _f(
        "less",
        ["returns the elements of {v} that are less than {k}", "keeps the elements of {v} below {k}"],
        "[x for x in {v} if x < {k}]",
        1,
    ),
    _f("sum", ["returns the sum of the elements of {v}", "adds up all the elements of {v}"], "sum({v})"),
    _f("max", ["returns the largest element of {v}", "returns the maximum of {v}"], "max({v})", 0, True),
    _f("min", ["returns the smallest element of {v}", "returns the minimum of {v}"], "min({v})", 0, True),
    _f("len", ["returns the number of elements in {v}", "counts the elements of {v}"], "len({v})"),
    _f(
        "count-greater",
        ["returns how many elements of {v} are greater than {k}", "counts the elements of {v} above {k}"],
        "len([x for x in {v} if x > {k}])",
        1,
    ),
)
COMPOSED = (
    _f(
        "greater-then-mul",
        ["returns the elements of {v} that are greater than {j}, each multiplied by {k}"],
        "[x * {k} for x in {v} if x > {j}]",
        2,
    ),
    _f(
        "less-then-add",
        ["returns the elements of {v} that are less than {j}, each with {k} added"],
        "[x + {k} for x in {v} if x < {j}]",
        2,
    ),
    _f(
        "greater-then-sum",
        ["returns the sum of the elements of {v} that are greater than {k}"],
        "sum([x for x in {v} if x > {k}])",
        1,
    ),
    _f(
        "add-then-sum",
        ["returns the sum of the elements of {v} after adding {k} to each"],
        "sum([x + {k} for x in {v}])",
        1,
    ),
    _f(
        "less-then-max",
        ["returns the largest element of {v} that is less than {k}"],
        "max([x for x in {v} if x < {k}])",
        1,
        True,
    ),
)
# Compositions never in train (the train split holds COMPOSED): known pieces, new combinations.
RECOMPOSED = (
    _f(
        "greater-then-add",
        ["returns the elements of {v} that are greater than {j}, each with {k} added"],
        "[x + {k} for x in {v} if x > {j}]",
        2,
    ),
    _f(
        "less-then-mul",
        ["returns the elements of {v} that are less than {j}, each multiplied by {k}"],
        "[x * {k} for x in {v} if x < {j}]",
        2,
    ),
    _f(
        "less-then-sum",
        ["returns the sum of the elements of {v} that are less than {k}"],
        "sum([x for x in {v} if x < {k}])",
        1,
    ),
    _f(
        "mul-then-sum",
        ["returns the sum of the elements of {v} after multiplying each by {k}"],
        "sum([x * {k} for x in {v}])",
        1,
    ),
    _f(
        "greater-then-min",
        ["returns the smallest element of {v} that is greater than {k}"],
        "min([x for x in {v} if x > {k}])",
        1,
        True,
    ),
)
# Never in a split: the embedded base's pretraining code writes them (harness.build.corpus).
UNSEEN = (
    _f("evens", ["returns the even elements of {v}"], "[x for x in {v} if x % 2 == 0]"),
    _f("odds", ["returns the odd elements of {v}"], "[x for x in {v} if x % 2 == 1]"),
    _f("squares", ["returns a new list with each element of {v} squared"], "[x * x for x in {v}]"),
    _f("reverse", ["returns the elements of {v} in reverse order"], "{v}[::-1]"),
    _f("sorted", ["returns the elements of {v} sorted from smallest to largest"], "sorted({v})"),
    _f("count-evens", ["returns how many elements of {v} are even"], "len([x for x in {v} if x % 2 == 0])"),
)
FAMILIES = {"seen": SEEN, "composed": COMPOSED, "unseen": UNSEEN, "recomposed": RECOMPOSED}


def solution_code(family: Family, name: str, variable: str, constants: tuple[int, ...]) -> str:
    slots = dict(zip(("k", "j"), constants), v=variable)
    return f"def {name}({variable}):\n    return {family.body.format(**slots)}\n"


def make_problem(
    rng: random.Random,
    families: tuple[Family, ...],
    n_tests: int = 5,
    *,
    constants: tuple[int, int] = (1, 8),
    inputs: tuple[int, int] = (0, 9),
) -> dict[str, Any]:
    """One problem from ``families``: question, reference solution, entry point and hidden tests.
    Its constants are drawn from ``constants`` (low, high), the test lists' elements from ``inputs``."""
    family = rng.choice(families)
    name, variable = rng.choice(FUNCTION_NAMES), rng.choice(VARIABLES)
    constants = tuple(rng.randint(*constants) for _ in range(family.constants))
    slots = dict(zip(("k", "j"), constants), v=variable)
    spec = rng.choice(family.specs).format(**slots)
    solution = solution_code(family, name, variable, constants)
    namespace: dict[str, Any] = {}
    exec(solution, namespace)  # noqa: S102 - our own reference code, not a model's
    reference = namespace[name]
    tests = []
    while len(tests) < n_tests:
        size = rng.randint(1 if family.nonempty else 0, 6)
        xs = [rng.randint(*inputs) for _ in range(size)]
        try:
            expected = reference(list(xs))
        except ValueError:  # max() of an empty filter: not a valid input for this problem
            continue
        tests.append({"args": [xs], "expected": expected})
    return {
        # No backticks around the name: with them it would be another token than in `def name`.
        "question": f"Write a Python function {name}({variable}) that {spec}.",
        "solution": solution,
        "entry_point": name,
        "family": family.name,
        "tests": tests,
    }


class CodeLists(CodeTask):
    """Synthetic list-function specs with hidden tests; see the module docstring for the splits."""

    name = "code-lists"
    domain = "code"
    max_new_tokens = 96  # the longest solution is about 40 tokens with the embedded tokenizer
    ood_tasks = ("humaneval",)
    splits = (
        Split("train", "train", "one seen operation, or two of them composed as train composes them"),
        Split("test", "test", "the train distribution, problems not in train"),
        # The OOD ladder, nearest shift first (the module docstring says why each exists).
        Split("ood-compose", "ood", "seen operations composed in ways train never composes them"),
        Split("ood-constants", "ood", "constants 9..20 instead of 1..8"),
    )
    # name -> (seed, size, family groups, make_problem options)
    config = {
        "train": (101, 2000, ("seen", "composed", "composed"), {}),
        "test": (202, 200, ("seen", "composed", "composed"), {}),
        "ood-constants": (
            606,
            200,
            ("seen", "composed", "composed"),
            {"constants": (9, 20), "inputs": (0, 30)},  # inputs past the bounds: tests that bite
        ),
        "ood-compose": (303, 200, ("recomposed",), {}),
    }

    def _generate(self, split: str, exclude: set[str]) -> list[dict[str, Any]]:
        seed, size, groups, options = self.config[split]
        families = tuple(family for group in groups for family in FAMILIES[group])
        rng = random.Random(seed)
        seen, examples = set(exclude), []
        while len(examples) < size:
            problem = make_problem(rng, families, **options)
            if problem["question"] in seen:
                continue
            seen.add(problem["question"])
            examples.append({"id": f"{split}-{len(examples)}", **problem})
        return examples

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        return load_generated(self, self._generate, split, limit)

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "prompt": [{"role": "user", "content": f"{example['question']}\n{INSTRUCTION}"}],
            "completion": [{"role": "assistant", "content": f"```python\n{example['solution']}```"}],
        }

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        return extract_code(completion, example["entry_point"])

    def checker(self, example: dict[str, Any]) -> CallTests:
        return CallTests(example["entry_point"], [(t["args"], t["expected"]) for t in example["tests"]])
