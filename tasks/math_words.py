r"""math-words: synthetic arithmetic word problems with step-by-step solutions ending in ``\boxed{N}``.

Every problem starts a person with a count of objects and applies a few operations: add, subtract
(never below 1) and multiply by two or three. The vocabulary is a handful of names, objects and verbs,
and every solution line has one fixed shape per operation, so a ~3M-parameter model pretrained for
minutes on a laptop can learn the in-domain task; the ood splits each shift one thing away from it.
Everything is generated from fixed per-split seeds, so every load gives the same examples.

>>> from tasks.math_words import MathWords
>>> record = MathWords().load("train", limit=1)[0]
>>> print(record["question"])
Tom has 18 apples. Then he gets 14 more apples. How many apples does Tom have now?
>>> print(record["solution"])
Tom starts with 18 apples.
He has 14 more: 18 + 14 = 32.
The answer is \boxed{32}.
>>> record["id"], record["answer"], record["steps"]
('train-0', '32', 1)

Splits (``steps`` counts the operations of a problem); the OOD splits are a ladder from the nearest
shift to the farthest, chosen from the base's and SFT's scores only (never DFT's) so that the near
ones are measurable: a model at the floor of every shift cannot show a difference in generalization.
Scores of the embedded base / an SFT run (laptop preset, seed 0) when the splits were chosen:

* ``train`` (2000): 1-3 operations, numbers 1..20, ``SEEN`` phrasings.
* ``test`` (200): the train distribution, other problems (base 32.0, SFT 72.0: off the ceiling).
* ``ood-names`` (200): people never named in train or pretraining (``UNSEEN_NAMES``), the rest as in
  train: the nearest shift, one token the solution must copy (SFT 52.0, the near rung).
* ``ood-numbers-near`` (200): numbers 21..30, just past train's range (base 19.5, SFT 13.5). New
  to fine-tuning, not to pretraining: the base's corpus draws numbers up to 50, and 5 of these 200
  questions occur in it verbatim (the committed base was built before this split existed; a rebuild,
  ``nox -s build-base``, keeps every evaluation question out).
* ``ood-phrasing`` (200): ``UNSEEN`` phrasings of the same operations; the solutions keep their shape
  (base 4.5, SFT 4.5).
* ``ood-steps`` (200): 4-5 operations: longer reasoning chains (base 4.0, SFT 5.0).
* ``ood-numbers`` (200): numbers 20..99: values never seen in questions (base 4.5, SFT 2.5).

Test and ood questions never occur in train, and no question occurs twice in one split.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from tasks.base import Split, Task, load_generated
from tasks.math_grading import MathAnswerTask

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

NAMES = (("Mia", "she"), ("Tom", "he"), ("Ana", "she"), ("Ben", "he"), ("Lea", "she"), ("Sam", "he"))
OBJECTS = (("apple", "apples"), ("pen", "pens"), ("book", "books"), ("card", "cards"), ("ball", "balls"))
# ood-names: people never named in train nor in the base's pretraining corpus.
UNSEEN_NAMES = (("Zoe", "she"), ("Max", "he"), ("Ivy", "she"), ("Kai", "he"))
VERBS = {"add": ("buys", "finds", "gets"), "sub": ("gives away", "sells", "loses")}
TIMES = {2: "twice", 3: "three times"}

# Placeholders: {name} {pro}/{Pro} (she, he) {pos} (her, his) {verb} {n} {obj} (agrees with n) {objs}
# (plural) {times} (twice, three times). SEEN and UNSEEN share no sentence shape.
SEEN = {
    "start": ("{name} has {n} {obj}.",),
    "add": ("{Pro} {verb} {n} more {obj}.", "Then {pro} {verb} {n} more {obj}."),
    "sub": ("{Pro} {verb} {n} {obj}.", "Then {pro} {verb} {n} {obj}."),
    "mul": ("Then {pro} has {times} as many {objs}.",),
    "ask": ("How many {objs} does {name} have now?",),
}
UNSEEN = {
    "start": ("At first, there are {n} {obj} in {name}'s bag.",),
    "add": ("After that, {name} {verb} another {n} {obj}.", "Later, {pro} {verb} {n} extra {obj}."),
    "sub": ("After that, {name} {verb} {n} of {pos} {objs}.", "Later, {pro} {verb} {n} {obj} from the bag."),
    "mul": ("Later, the number of {objs} {pro} owns becomes {times} as big.",),
    "ask": (
        "What is the number of {objs} {name} has at the end?",
        "In the end, how many {objs} does {pro} own?",
    ),
}

# Solution lines depend on the operation only, never on the phrasing, so ood-phrasing tests reading.
SOLUTION = {
    "start": "{name} starts with {n} {obj}.",
    "add": "{Pro} has {n} more: {a} + {n} = {c}.",
    "sub": "{Pro} has {n} fewer: {a} - {n} = {c}.",
    "mul": "{Pro} has {times} as many: {a} * {n} = {c}.",
}
# The off-style: the same steps and results, worded and laid out otherwise (an opening sentence, a
# numbered list, a closing sentence), as another source's solutions are written. The base never
# saw it in pretraining (its corpus writes SOLUTION's lines).
NUMBERED = {
    "open": "Step by step, with {name}'s {objs}:",
    "start": "At first there {be} {n} {obj}.",
    "add": "Adding {n} {obj} gives {a} + {n} = {c}.",
    "sub": "Removing {n} {obj} leaves {a} - {n} = {c}.",
    "mul": "Multiplying by {n} gives {a} * {n} = {c}.",
    "close": "So {name} ends up with {c} {cobj}, and the answer is \\boxed{{{c}}}.",
}
STYLES = ("steps", "numbered")  # the first: SOLUTION's, what the splits hold


def _fill(template: str, slots: dict[str, Any]) -> str:
    pro = slots["pro"]
    return template.format(Pro=pro.capitalize(), pos="her" if pro == "she" else "his", **slots)


def make_problem(
    rng: random.Random,
    *,
    steps: int,
    low: int,
    high: int,
    templates: dict,
    names: tuple[tuple[str, str], ...] = NAMES,
    objects: tuple[tuple[str, str], ...] = OBJECTS,
) -> dict:
    """One problem of ``steps`` operations on numbers in ``low..high``, phrased with ``templates``,
    about one of ``names`` (name, pronoun) and one of ``objects`` (singular, plural).

    Returns ``{"question": str, "steps": [solution line, ...], "answer": str}``; the lines start with
    the initial count and hold one line per operation.
    """
    name, pro = rng.choice(names)
    singular, plural = rng.choice(objects)
    slots = {"name": name, "pro": pro, "objs": plural}

    def with_n(n: int, **extra: Any) -> dict[str, Any]:
        return {**slots, "n": n, "obj": singular if n == 1 else plural, **extra}

    value = rng.randint(low, high)
    sentences = [_fill(rng.choice(templates["start"]), with_n(value))]
    lines = [_fill(SOLUTION["start"], with_n(value))]
    # What the solution says, whatever its style: (operation, n, before, after) after the start.
    facts = {"name": name, "pro": pro, "obj": singular, "objs": plural, "start": value, "ops": []}
    for _ in range(steps):
        ops = ["add", "add"]
        if value > low:  # subtracting at least `low` must leave at least 1
            ops += ["sub", "sub"]
        if value <= high:  # keeps products within 3 * high
            ops.append("mul")
        op = rng.choice(ops)
        if op == "add":
            n = rng.randint(low, high)
            new = value + n
        elif op == "sub":
            n = rng.randint(low, min(high, value - 1))
            new = value - n
        else:
            n = rng.choice(tuple(TIMES))
            new = value * n
        verb = rng.choice(VERBS[op]) if op in VERBS else ""
        fill = with_n(n, a=value, c=new, times=TIMES.get(n, ""), verb=verb)
        sentences.append(_fill(rng.choice(templates[op]), fill))
        lines.append(_fill(SOLUTION[op], fill))
        facts["ops"].append([op, n, value, new])
        value = new
    sentences.append(_fill(rng.choice(templates["ask"]), slots))
    return {"question": " ".join(sentences), "steps": lines, "answer": str(value), "facts": facts}


def render_solution(problem: dict) -> str:
    """The solution text: the problem's lines, then ``The answer is \\boxed{N}.``."""
    return "\n".join([*problem["steps"], f"The answer is \\boxed{{{problem['answer']}}}."])


def render_numbered(facts: dict) -> str:
    r"""The off-style solution of a problem (:data:`NUMBERED`) from its ``facts``: the same steps,
    results and final answer as :func:`render_solution`'s.

    >>> facts = {"name": "Tom", "pro": "he", "obj": "apple", "objs": "apples", "start": 18,
    ...          "ops": [["add", 14, 18, 32]]}
    >>> print(render_numbered(facts))
    Step by step, with Tom's apples:
    1. At first there are 18 apples.
    2. Adding 14 apples gives 18 + 14 = 32.
    So Tom ends up with 32 apples, and the answer is \boxed{32}.
    """

    def count(n: int) -> str:
        return facts["obj"] if n == 1 else facts["objs"]

    start = facts["start"]
    lines = [
        NUMBERED["open"].format(name=facts["name"], objs=facts["objs"]),
        "1. " + NUMBERED["start"].format(be="is" if start == 1 else "are", n=start, obj=count(start)),
    ]
    value = start
    for number, (op, n, a, c) in enumerate(facts["ops"], start=2):
        obj = count(n) if op != "mul" else ""
        lines.append(f"{number}. " + NUMBERED[op].format(n=n, obj=obj, a=a, c=c))
        value = c
    lines.append(NUMBERED["close"].format(name=facts["name"], c=value, cobj=count(value)))
    return "\n".join(lines)


class SplitDesign(NamedTuple):
    """How one split is generated: its seed and size, the number of operations, the range of the
    numbers, the phrasings, and the people and objects the problems are about."""

    seed: int
    size: int
    min_steps: int
    max_steps: int
    low: int
    high: int
    templates: Any
    names: Any = NAMES
    objects: Any = OBJECTS


class MathWords(MathAnswerTask, Task):
    """Synthetic arithmetic word problems; see the module docstring for the splits."""

    name = "math-words"
    domain = "math"
    styles = STYLES
    # Solutions are at most 223 characters (5-step ood); a subword tokenizer needs well under 200 tokens,
    # a character-level one would not.
    max_new_tokens = 200
    # The OOD splits from the nearest shift to the farthest (a ladder: where the near ones are
    # measurable, a difference in generalization can show).
    splits = (
        Split("train", "train", "1-3 operations, numbers 1..20, seen phrasings"),
        Split("test", "test", "the train distribution, problems not in train"),
        Split("ood-names", "ood", "people never named in train; everything else as in train"),
        Split("ood-numbers-near", "ood", "numbers 21..30, just past train's 1..20"),
        Split("ood-phrasing", "ood", "phrasings never seen in train"),
        Split("ood-steps", "ood", "4-5 operations instead of 1-3"),
        Split("ood-numbers", "ood", "numbers 20..99 instead of 1..20"),
    )
    config = {
        "train": SplitDesign(1001, 2000, 1, 3, 1, 20, SEEN),
        "test": SplitDesign(2002, 200, 1, 3, 1, 20, SEEN),
        "ood-steps": SplitDesign(3003, 200, 4, 5, 1, 20, SEEN),
        "ood-numbers": SplitDesign(4004, 200, 1, 3, 20, 99, SEEN),
        "ood-phrasing": SplitDesign(5005, 200, 1, 3, 1, 20, UNSEEN),
        "ood-names": SplitDesign(6006, 200, 1, 3, 1, 20, SEEN, names=UNSEEN_NAMES),
        "ood-numbers-near": SplitDesign(7007, 200, 1, 3, 21, 30, SEEN),
    }

    def _generate(self, split: str, exclude: set[str]) -> list[dict[str, Any]]:
        design = self.config[split]
        rng = random.Random(design.seed)
        seen = set(exclude)
        examples = []
        while len(examples) < design.size:
            steps = rng.randint(design.min_steps, design.max_steps)
            problem = make_problem(
                rng,
                steps=steps,
                low=design.low,
                high=design.high,
                templates=design.templates,
                names=design.names,
                objects=design.objects,
            )
            if problem["question"] in seen:
                continue
            seen.add(problem["question"])
            examples.append(
                {
                    "id": f"{split}-{len(examples)}",
                    "question": problem["question"],
                    "solution": render_solution(problem),
                    "answer": problem["answer"],
                    "steps": steps,
                    "facts": problem["facts"],
                }
            )
        return examples

    def restyle(self, example: dict[str, Any], style: str) -> dict[str, Any]:
        """The example with its solution in ``style``: ``steps`` as generated, ``numbered`` the same
        steps worded and laid out otherwise (:func:`render_numbered`)."""
        if style == "steps":
            return example
        if style == "numbered":
            return {**example, "solution": render_numbered(example["facts"])}
        raise ValueError(self.unknown_style(style))

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        return load_generated(self, self._generate, split, limit)

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "prompt": [{"role": "user", "content": f"{example['question']}\n{INSTRUCTION}"}],
            "completion": [{"role": "assistant", "content": example["solution"]}],
        }
