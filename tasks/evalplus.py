r"""HumanEval+ and MBPP+ (EvalPlus, Liu et al. 2023): HumanEval's 164 and MBPP's 378 problems with
many more test inputs, graded as EvalPlus grades them: by differential testing against the reference
solution.

Data: EvalPlus's release files (``HumanEvalPlus.jsonl.gz`` v0.1.10, ``MbppPlus.jsonl.gz`` v0.2.0 from
github.com/evalplus/humanevalplus_release and mbppplus_release), one JSON row per problem with
``task_id, prompt, entry_point, canonical_solution, base_input, plus_input, atol`` (plus ``contract``,
``test``, ``assertion``, which grading does not need). A task reads, in order: the file that
EvalPlus's own override variable names (``HUMANEVAL_OVERRIDE_PATH``, ``MBPP_OVERRIDE_PATH``, so a
user's EvalPlus setup works unchanged), its local copy under ``$HARNESS_DATA``
(``humaneval-plus.jsonl[.gz]``, ``mbpp-plus.jsonl[.gz]``), or the hub copy (``evalplus/humanevalplus``,
``evalplus/mbppplus``). The hub copies are in the original datasets' formats, their tests a script
with the inputs and expected outputs written in (HumanEval's ``check(candidate)``; MBPP's top-level
loop, wrapped into one): such a row is graded by running that function, as HumanEval is, without
EvalPlus's special oracles.

Grading, as EvalPlus's ``evaluate`` does it:

* expected outputs are the reference solution's answers (``prompt + canonical_solution``) on every
  base and plus input, computed once per task object in the sandbox (:func:`reference_answers`,
  4 GiB and 120 s per problem); an extreme input whose answer cannot cross the sandbox (Mbpp/255's
  1.7 million tuples) ends the inputs a problem is tested on, with a warning naming it;
* a program passes when it answers every base input and every plus input as the reference does:
  ``==``, or within ``atol`` (1e-6 when the row's ``atol`` is 0 and the expected value is a float or
  a list of floats; then the types and lengths must match and ``numpy.allclose(rtol=1e-7)`` holds);
* EvalPlus's special oracles: HumanEval/32 (``find_zero``) passes when the polynomial at the answer
  is within ``atol`` of 0; MBPP's set-valued tasks compare as sets, its three tasks whose answer is a
  ``re.Match`` compare whether there was one, and Mbpp/164, 295, 558 and 581 accept what EvalPlus's
  own oracles accept;
* MBPP inputs that JSON cannot hold (tuples, sets, complex numbers) are rebuilt for the tasks
  EvalPlus rebuilds them for (:func:`mbpp_inputs`).

The prompt is EvalPlus's chat prompt (``instruction_prefix`` and the problem in a fenced block); the
program is the fenced code of the answer (for HumanEval+, after the problem's prompt when the answer
gives only the body, as :mod:`tasks.humaneval` does). The score is pass@1 on base and plus tests
together, EvalPlus's "plus" number.

>>> cases = PlusTests("mbpp", "similar_elements", [([(3, 4, 5, 6), (5, 7, 4, 10)], (4, 5))], atol=0)
>>> args = [(3, 4, 5, 6), (5, 7, 4, 10)]
>>> cases.matches(args, (5, 4), (4, 5), atol=0), cases.matches(args, (4,), (4, 5), atol=0)
(True, False)
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from harness.sandbox.check import CheckFunction, reference_answers
from harness.sandbox.driver import MAX_LINE, encode
from harness.sandbox.process import Limits
from tasks.base import Split
from tasks.code_grading import CodeTask, extract_code
from tasks.humaneval import program_after_prompt
from tasks.sources import Source, field, load_rows, nonempty, read_file

INSTRUCTION = "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution")
# MBPP tasks whose answer is checked as a set (the order of a returned list is free), and those whose
# answer (a ``re.Match`` or None) is checked for being there: EvalPlus's special-oracle lists.
SET_EQUAL = {"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
             "larg_nnum", "intersection_array", "find_dissimilar", "Diff"}  # fmt: skip
NOT_NONE = {"check_str", "text_match_three", "text_starta_endb"}


def _poly(xs: list, x: float) -> float:
    """HumanEval/32's oracle: the polynomial with coefficients ``xs`` at ``x``."""
    return sum(coefficient * math.pow(x, i) for i, coefficient in enumerate(xs))


def _pyramid_surface(base_edge: float, height: float) -> int:
    """Mbpp/581's other reading: ``height`` as the apex's distance from the base (EvalPlus's oracle)."""
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _padded_digit_distance(a: int, b: int) -> int:
    """Mbpp/558's other reading: the numbers zero-padded to one length (EvalPlus's oracle)."""
    width = max(len(str(a)), len(str(b)))
    return sum(abs(int(x) - int(y)) for x, y in zip(str(a).zfill(width), str(b).zfill(width)))


def _is_floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, float) for v in value)


class PlusTests:
    """Differential tests: ``entry_point(*args)`` must answer as the reference did for every case
    (``(args, expected)``), compared as EvalPlus compares (see the module docstring)."""

    def __init__(
        self,
        dataset: str,
        entry_point: str,
        cases: list[tuple[list, Any]],
        atol: float,
        max_answer_bytes: int = MAX_LINE,
    ):
        self.dataset, self.entry_point, self.cases, self.atol = dataset, entry_point, cases, atol
        self.reduce = "not_none" if dataset == "mbpp" and entry_point in NOT_NONE else None
        self.max_answer_bytes = max_answer_bytes  # the sandbox's bound on one answer

    def atol_for(self, expected: Any) -> float:
        return 1e-6 if self.atol == 0 and _is_floats(expected) else self.atol

    def matches(self, args: list, got: Any, expected: Any, atol: float) -> bool:
        try:
            exact = bool(got == expected)
        except Exception:  # noqa: BLE001 - an answer that cannot even be compared is wrong
            return False
        name = self.entry_point
        if self.dataset == "mbpp":
            if name == "are_equivalent":  # Mbpp/164: the reference itself is disputed; any answer
                return True
            if name == "sum_div":
                exact = exact or got == 0
            elif name == "surface_Area":
                exact = exact or (
                    isinstance(got, (int, float)) and abs(got - _pyramid_surface(*args)) <= atol
                )
            elif name == "digit_distance_nums":
                exact = exact or got == _padded_digit_distance(*args)
            elif name in SET_EQUAL:
                try:
                    exact = set(got) == set(expected)
                except TypeError:
                    return False
        if self.dataset == "humaneval" and name == "find_zero":
            return isinstance(got, (int, float)) and abs(_poly(*args, got)) <= atol
        if exact or atol == 0:
            return exact
        if type(got) is not type(expected):
            return False
        if isinstance(expected, (list, tuple)) and len(got) != len(expected):
            return False
        try:
            import numpy as np  # only MBPP+'s float answers need it: a task's import stays light

            return bool(np.allclose(got, expected, rtol=1e-07, atol=atol))
        except (TypeError, ValueError):
            return False

    def run(self, candidate) -> None:
        atol = self.atol
        for number, (args, expected) in enumerate(self.cases, start=1):
            got = candidate.call(args, self.reduce)
            atol = atol or self.atol_for(expected)  # as EvalPlus: once a float is seen, for the rest
            if not self.matches(args, got, expected, atol):
                shown = ", ".join(map(repr, args))[:200]
                raise AssertionError(
                    f"test {number} of {len(self.cases)}: {self.entry_point}({shown}) returned "
                    f"{str(repr(got))[:200]}, expected {str(repr(expected))[:200]}"
                )


def _tuples(value: Any) -> Any:
    """Every list inside ``value``, itself included, as a tuple."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


# How EvalPlus rebuilds MBPP inputs that JSON stored as lists (its ``mbpp_deserialize_inputs``): by task
# number, a function of one input (its argument list).
_EVERY_ARG_TUPLE = (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616,
                    630, 726, 740, 744, 809)  # fmt: skip
_EVERY_ARG_TUPLES = (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780)
_REBUILD = {
    **{n: lambda a: [tuple(x) for x in a] for n in _EVERY_ARG_TUPLE},
    **{n: lambda a: [[tuple(x) for x in arg] for arg in a] for n in _EVERY_ARG_TUPLES},
    **{n: lambda a: [[tuple(x) for x in a[0]], a[1]] for n in (75, 413, 444, 753)},
    **{n: lambda a: [a[0], tuple(a[1])] for n in (106, 750)},
    # EvalPlus writes an empty inner list as {} (a dict), and so does this.
    115: lambda a: [[set(x) if isinstance(x, list) and x else {} for x in a[0]]],
    124: lambda a: [float(a[0]), complex(a[1])],
    **{n: lambda a: [tuple(a[0]), a[1]] for n in (250, 405, 446, 617, 720, 763, 808)},
    **{n: lambda a: [tuple(tuple(x) for x in arg) for arg in a] for n in (259, 401, 445)},
    278: lambda a: [tuple(tuple(x) if isinstance(x, list) else x for x in a[0])],
    307: lambda a: [tuple(a[0]), a[1], a[2]],
    722: lambda a: [{key: tuple(value) for key, value in a[0].items()}, *a[1:]],
    252: lambda a: [complex(a[0])],
    **{n: lambda a: list(_tuples(a)) for n in (580, 615, 791)},
}


def mbpp_inputs(task_id: str, inputs: list[list]) -> list[list]:
    """MBPP+ inputs with the tuples, sets and complex numbers JSON could not hold put back.

    >>> mbpp_inputs("Mbpp/2", [[[3, 4], [4, 5]]]), mbpp_inputs("Mbpp/3", [[[3, 4]]])
    ([[(3, 4), (4, 5)]], [[[3, 4]]])
    """
    rebuild = _REBUILD.get(int(str(task_id).rsplit("/", 1)[-1]))
    return inputs if rebuild is None else [rebuild(args) for args in inputs]


def original_mbpp(row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
    """A row of the hub's MBPP+ (``evalplus/mbppplus``: MBPP's original fields, ``code``, ``prompt``
    the bare description, ``test_list``, and ``test`` a script that calls the function on every input)
    in the release format: the prompt as EvalPlus writes it (the description and the first example
    assertion in a docstring), and the script as a ``check(candidate)`` function."""
    code = str(field(row, ("code",), "mbpp-plus", where, number))
    tests = field(row, ("test_list",), "mbpp-plus", where, number)
    defined = re.findall(r"^def (\w+)\s*\(", code, re.MULTILINE)
    called = [name for name in defined if re.search(rf"\b{re.escape(name)}\s*\(", str(tests[0]))]
    if not called:
        raise ValueError(f"{where} row {number}: mbpp-plus's first test calls no function its code defines")
    script = str(field(row, ("test",), "mbpp-plus", where, number))
    return {
        "task_id": f"Mbpp/{row.get('task_id', number)}",
        "prompt": f'"""\n{str(row.get("prompt", "")).strip()}\n{tests[0]}\n"""\n',
        "entry_point": called[0],
        "canonical_solution": code,
        "test": f"def check(candidate):\n    {called[0]} = candidate\n" + textwrap.indent(script, "    "),
    }


class EvalPlusTask(CodeTask):
    """One EvalPlus dataset; subclasses name it, its source and how a program is built."""

    domain = "code"
    max_new_tokens = 768
    timeout_s = 30.0  # at least; 4 times the reference's time where that is longer (EvalPlus's factor)
    memory_mb = 4096  # EvalPlus's own default (4 GiB): its largest inputs need more than 1 GiB
    dataset: ClassVar[str]  # "humaneval" | "mbpp": which special oracles apply
    override_variable: ClassVar[str]
    source: ClassVar[Source]

    def __init__(self):
        self._expected: dict[str, list[Any]] = {}
        self._seconds: dict[str, float] = {}  # how long the reference took on a problem's inputs
        self._answer_bytes: dict[str, int] = {}  # the bound on one answer of a problem's programs

    def _rows(self) -> tuple[list[dict[str, Any]], str]:
        override = os.environ.get(self.override_variable)
        if override:
            try:
                return nonempty(list(read_file(Path(override))), override, self.name), override
            except OSError as error:
                raise ValueError(f"{override} (${self.override_variable}): cannot read ({error})") from None
        return load_rows(self.name, self.source)

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows, where = self._rows()
        examples = []
        for number, row in enumerate(rows[:limit], start=1):
            if isinstance(row, dict) and "base_input" not in row and "test_list" in row:
                row = original_mbpp(row, where, number)
            values = {name: str(field(row, (name,), self.name, where, number)) for name in FIELDS}
            if "base_input" in row:  # the release format: differential testing
                inputs = [list(row.get("base_input") or []), list(row.get("plus_input") or [])]
                if self.dataset == "mbpp":
                    inputs = [mbpp_inputs(values["task_id"], part) for part in inputs]
                values |= {"inputs": inputs[0] + inputs[1], "atol": float(row.get("atol") or 0)}
            else:  # the hub's original format: a check(candidate) function
                test = str(field(row, ("test",), self.name, where, number))
                if "def check(" not in test:
                    raise ValueError(
                        f"{where} row {number}: {self.name} needs 'base_input' and 'plus_input' (EvalPlus's "
                        "release format) or a 'test' with def check(candidate)"
                    )
                values["test"] = test
            examples.append({"id": values["task_id"], **values})
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, Any]:
        solution = (example["prompt"] + example["canonical_solution"]).strip()
        return {
            "prompt": [
                {"role": "user", "content": f"{INSTRUCTION}\n```\n{example['prompt'].strip()}\n```\n"}
            ],
            "completion": [{"role": "assistant", "content": f"```python\n{solution}\n```"}],
        }

    def _reference(self, example: dict[str, Any]) -> list[Any]:
        """The reference solution's answers on every input of ``example`` (computed once)."""
        if example["id"] not in self._expected:
            reference = example["prompt"] + example["canonical_solution"]
            reduce = "not_none" if self.dataset == "mbpp" and example["entry_point"] in NOT_NONE else None
            limits = Limits(timeout_s=120.0, cpu_s=120, memory_mb=self.memory_mb)  # only slow inputs need it
            started = time.monotonic()
            try:
                answers = reference_answers(
                    reference, example["entry_point"], example["inputs"], reduce, limits, partial=True
                )
            except ValueError as error:
                raise ValueError(f"{self.name} {example['id']}: {error}") from None
            self._seconds[example["id"]] = time.monotonic() - started
            # A right answer may be large (6.9 MB); a program's may be up to twice the largest.
            largest = max((len(json.dumps(encode(answer))) for answer in answers), default=0)
            self._answer_bytes[example["id"]] = max(MAX_LINE, 2 * largest)
            if len(answers) < len(example["inputs"]):
                # An extreme input whose answer cannot cross the sandbox (Mbpp/255's 1.7 million
                # tuples of 77): graded on the inputs before it, and said so.
                print(
                    f"warning: {self.name} {example['id']}: the reference solution answered "
                    f"{len(answers)} of {len(example['inputs'])} inputs within the sandbox's limits; "
                    "programs are tested on those (the NoExtreme release file leaves such inputs out)",
                    file=sys.stderr,
                )
            self._expected[example["id"]] = answers
        return self._expected[example["id"]]

    def checker(self, example: dict[str, Any]) -> PlusTests | CheckFunction:
        if "test" in example:
            return CheckFunction(example["entry_point"], example["prompt"] + "\n\n" + example["test"])
        cases = list(zip(example["inputs"], self._reference(example)))
        bound = self._answer_bytes[example["id"]]
        return PlusTests(self.dataset, example["entry_point"], cases, example["atol"], bound)

    def limits(self, example: dict[str, Any]) -> Limits:
        # As EvalPlus: a program may take 4 times the reference's time (here on all inputs at once),
        # rounded up to whole multiples of the base limit, so programs share parallel batches.
        needed = 4 * self._seconds.get(example["id"], 0.0)
        timeout = self.timeout_s * max(1, math.ceil(needed / self.timeout_s))
        return Limits(timeout_s=timeout, cpu_s=math.ceil(timeout), memory_mb=self.memory_mb)

    def grade(self, pairs: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
        # The references first, many sandboxes at a time (each mostly waits on its calls).
        missing = {e["id"]: e for e, _ in pairs if "inputs" in e and e["id"] not in self._expected}
        with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
            list(pool.map(self._reference, missing.values()))
        return super().grade(pairs)


class HumanEvalPlus(EvalPlusTask):
    """HumanEval+; see the module docstring."""

    name = "humaneval-plus"
    title = "HumanEval+"
    dataset = "humaneval"
    override_variable = "HUMANEVAL_OVERRIDE_PATH"
    source = Source("evalplus/humanevalplus", split="test")
    splits = (Split("test", "test", "HumanEval's 164 problems with EvalPlus's extra tests"),)

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        return program_after_prompt(example["prompt"], completion, example["entry_point"])


class MBPPPlus(EvalPlusTask):
    """MBPP+; see the module docstring."""

    name = "mbpp-plus"
    title = "MBPP+"
    dataset = "mbpp"
    override_variable = "MBPP_OVERRIDE_PATH"
    source = Source("evalplus/mbppplus", split="test")
    splits = (Split("test", "test", "378 MBPP problems with EvalPlus's extra tests (v0.2.0)"),)

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        return extract_code(completion, example["entry_point"])

    def messages(self, example: dict[str, Any]) -> dict[str, Any]:
        messages = super().messages(example)
        solution = example["canonical_solution"].strip()  # a whole function: the prompt is a docstring
        messages["completion"] = [{"role": "assistant", "content": f"```python\n{solution}\n```"}]
        return messages
