"""The synthetic pretraining corpus of the embedded tiny base model.

DFT weighs each token by the model's own probability, so comparing it with SFT on a random model
says nothing: the base needs a real prior. This corpus gives it one: arithmetic facts, word
problems written the way math text is written (some ending in ``\\boxed{}``, some not), and short
chat-formatted exchanges so the chat template is familiar. Fine-tuning then has something to add
(the task's exact solution format, longer chains, unseen phrasings) and something to lose.

The corpus is a weighted list of sources; each source is a function ``(rng, avoid) -> str`` that
writes one document. Adding a domain means adding sources here, nothing else.

Code: small Python files that define and call list functions of every ``tasks.code_lists`` family
(its ``UNSEEN`` families included, which no split of the task uses: they are the base's own prior),
with docstrings in their own phrasing, and chat exchanges that answer
a differently phrased request with the function, fenced or bare. The task's spec phrasing, its
instruction and the answer without a docstring are left to fine-tuning.

>>> import random
>>> docs = [document(random.Random(i)) for i in range(3)]
>>> all(isinstance(d, str) and d for d in docs)
True
"""

from __future__ import annotations

import random
from collections.abc import Callable, Set
from dataclasses import dataclass

from tasks import code_lists
from tasks.math_words import INSTRUCTION, SEEN, make_problem, render_solution

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"


def chat(user: str, assistant: str) -> str:
    """ChatML, the template the embedded tokenizer ships with (same as Qwen2.5)."""
    return f"{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n{assistant}{IM_END}\n"


def arithmetic_facts(rng: random.Random, avoid: Set[str]) -> str:
    lines = []
    for _ in range(rng.randint(4, 10)):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        op = rng.choice("+-*")
        if op == "-":
            a, b = max(a, b), min(a, b)
        if op == "*":
            a, b = rng.randint(0, 12), rng.randint(0, 12)
        lines.append(f"{a} {op} {b} = {eval(f'{a}{op}{b}')}")  # noqa: S307 - digits and one operator
    return "\n".join(lines) + "\n"


def _problem(rng: random.Random, avoid: Set[str]) -> dict:
    while True:  # redraw evaluation questions, so they never leak into pretraining
        high = rng.choice([20, 20, 50])
        problem = make_problem(rng, steps=rng.randint(1, 3), low=1, high=high, templates=SEEN)
        if problem["question"] not in avoid:
            return problem


def worked_problem_boxed(rng: random.Random, avoid: Set[str]) -> str:
    problem = _problem(rng, avoid)
    return f"Question: {problem['question']}\nAnswer: {render_solution(problem)}\n"


def worked_problem_plain(rng: random.Random, avoid: Set[str]) -> str:
    problem = _problem(rng, avoid)
    steps = " ".join(problem["steps"])
    return f"Q: {problem['question']}\nA: {steps} So the answer is {problem['answer']}.\n"


def chat_arithmetic(rng: random.Random, avoid: Set[str]) -> str:
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    if rng.random() < 0.5:
        return chat(f"What is {a} plus {b}?", f"{a} + {b} = {a + b}.")
    a, b = max(a, b), min(a, b)
    return chat(f"What is {a} minus {b}?", f"{a} - {b} = {a - b}.")


def chat_problem_worked(rng: random.Random, avoid: Set[str]) -> str:
    """The task's chat prompt answered in running prose: the base knows the template, the
    instruction, ``\\boxed{}`` and where the turn ends; the task's line-by-line format is left to
    fine-tuning."""
    problem = _problem(rng, avoid)
    prose = " ".join(problem["steps"])
    return chat(
        f"{problem['question']}\n{INSTRUCTION}", f"{prose} So the answer is \\boxed{{{problem['answer']}}}."
    )


def chat_problem_short(rng: random.Random, avoid: Set[str]) -> str:
    """Chat answers without working: the format the task asks for is taught by fine-tuning."""
    problem = _problem(rng, avoid)
    return chat(problem["question"], f"The answer is {problem['answer']}.")


def _code_function(rng: random.Random) -> tuple[str, str, str, list[int]]:
    """``(definition with docstring, name, variable, an input)`` of a random family."""
    group = rng.choice(("seen", "seen", "composed", "unseen", "unseen"))
    family = rng.choice(code_lists.FAMILIES[group])
    name = rng.choice(code_lists.FUNCTION_NAMES + ("f", "g", "helper", "main_step"))
    variable = rng.choice(code_lists.VARIABLES + ("lst", "numbers"))
    constants = tuple(rng.randint(1, 8) for _ in range(family.constants))
    code = code_lists.solution_code(family, name, variable, constants)
    slots = dict(zip(("k", "j"), constants), v=variable)
    doc = rng.choice(family.specs).format(**slots)
    head, body = code.split("\n", 1)
    xs = [rng.randint(0 if not family.nonempty else 1, 9) for _ in range(rng.randint(1, 5))]
    return f'{head}\n    """{doc[0].upper()}{doc[1:]}."""\n{body}', name, variable, xs


def python_file(rng: random.Random, avoid: Set[str]) -> str:
    """A small module: one to three functions, each called on an example with its output shown."""
    parts = []
    for _ in range(rng.randint(1, 3)):
        definition, name, _, xs = _code_function(rng)
        namespace: dict = {}
        exec(definition, namespace)  # noqa: S102 - code this module wrote from fixed templates
        try:
            shown = repr(namespace[name](list(xs)))
        except ValueError:  # max() of an empty filter
            shown = "ValueError"
        parts.append(f"{definition}\n\nprint({name}({xs}))\n# {shown}\n")
    return "\n\n".join(parts)


def chat_code(rng: random.Random, avoid: Set[str]) -> str:
    """A request in other words than the task's, answered with the function: in a markdown code block
    half the time, as chat models write code, bare otherwise."""
    definition, name, variable, _ = _code_function(rng)
    doc = definition.split('"""')[1].rstrip(".")
    ask = rng.choice(("Show me Python code for {name}({v}): {doc}.", "Python: def {name}({v}). {doc}."))
    answer = definition.rstrip("\n")
    if rng.random() < 0.5:
        answer = f"```python\n{answer}\n```"
    return chat(ask.format(name=name, v=variable, doc=doc[0].lower() + doc[1:]), answer)


@dataclass(frozen=True)
class Source:
    name: str
    weight: float
    write: Callable[[random.Random, Set[str]], str]


SOURCES: tuple[Source, ...] = (
    Source("arithmetic-facts", 0.2, arithmetic_facts),
    Source("worked-problem-boxed", 0.25, worked_problem_boxed),
    Source("worked-problem-plain", 0.15, worked_problem_plain),
    Source("chat-arithmetic", 0.1, chat_arithmetic),
    Source("chat-problem-worked", 0.2, chat_problem_worked),
    Source("chat-problem-short", 0.1, chat_problem_short),
    Source("python-file", 0.25, python_file),
    Source("chat-code", 0.1, chat_code),
)


def document(rng: random.Random, avoid: Set[str] = frozenset()) -> str:
    """One document, from a source drawn by weight; word problems in ``avoid`` are never written."""
    source = rng.choices(SOURCES, weights=[s.weight for s in SOURCES])[0]
    return source.write(rng, avoid)


def documents(n: int, seed: int, avoid: Set[str] = frozenset()) -> list[str]:
    """``n`` documents, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [document(rng, avoid) for _ in range(n)]
