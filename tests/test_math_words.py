"""Tests of the math-words task: reproducible, disjoint splits whose shifts are real."""

from __future__ import annotations

import random
import re

import pytest

import tasks
from tasks.math_words import (
    NAMES,
    OBJECTS,
    SEEN,
    TIMES,
    UNSEEN,
    UNSEEN_NAMES,
    VERBS,
    MathWords,
    make_problem,
    render_solution,
)

TASK = MathWords()
SPLITS = {split.name: TASK.load(split.name) for split in TASK.splits}
SIZES = {"train": 2000, "test": 200} | {
    name: 200 for name in ("ood-names", "ood-numbers-near", "ood-phrasing", "ood-steps", "ood-numbers")
}
ARITHMETIC = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)\.$")


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def sentence_patterns(templates: dict) -> list[re.Pattern]:
    """One anchored regex per template sentence, its slots bound to the task's vocabulary."""

    def alternatives(words) -> str:
        return "(?:" + "|".join(re.escape(w) for w in words) + ")"

    names = [name for name, _ in NAMES + UNSEEN_NAMES]
    slots = {
        "name": alternatives(names),
        "pro": "(?:she|he)",
        "Pro": "(?:She|He)",
        "pos": "(?:her|his)",
        "verb": alternatives([v for verbs in VERBS.values() for v in verbs]),
        "n": r"\d+",
        "obj": alternatives([w for pair in OBJECTS for w in pair]),
        "objs": alternatives([plural for _, plural in OBJECTS]),
        "times": alternatives(TIMES.values()),
    }
    patterns = []
    for sentences in templates.values():
        for template in sentences:
            parts = re.split(r"\{(\w+)\}", template)
            # re.split alternates literal text and slot names
            regex = "".join(slots[p] if i % 2 else re.escape(p) for i, p in enumerate(parts))
            patterns.append(re.compile(regex + "$"))
    return patterns


def sentences(question: str) -> list[str]:
    return re.split(r"(?<=[.?])\s+", question)


def test_loading_is_reproducible() -> None:
    again = MathWords()
    for name, examples in SPLITS.items():
        assert again.load(name) == examples


def test_limit_returns_a_prefix() -> None:
    for name, examples in SPLITS.items():
        assert TASK.load(name, limit=7) == examples[:7]
        assert TASK.load(name, limit=50)[:7] == examples[:7]
    assert TASK.load("test", limit=0) == []


def test_split_sizes_and_ids() -> None:
    assert {name: len(examples) for name, examples in SPLITS.items()} == SIZES
    for name, examples in SPLITS.items():
        assert [e["id"] for e in examples] == [f"{name}-{i}" for i in range(len(examples))]


def test_roles() -> None:
    assert TASK.train_split == "train"
    # the OOD ladder, nearest shift first
    assert TASK.eval_splits == [
        "test",
        "ood-names",
        "ood-numbers-near",
        "ood-phrasing",
        "ood-steps",
        "ood-numbers",
    ]


def test_questions_are_unique_and_disjoint_from_train() -> None:
    train = {e["question"] for e in SPLITS["train"]}
    assert len(train) == len(SPLITS["train"])
    for name, examples in SPLITS.items():
        questions = [e["question"] for e in examples]
        assert len(set(questions)) == len(questions), name
        if name != "train":
            assert not train & set(questions), name


def test_step_counts() -> None:
    for name, examples in SPLITS.items():
        low, high = (4, 5) if name == "ood-steps" else (1, 3)
        counts = {e["steps"] for e in examples}
        assert counts == set(range(low, high + 1)), name
        for e in examples:
            # the recorded count is what the solution really does: one arithmetic line per step
            lines = [line for line in e["solution"].splitlines() if ARITHMETIC.search(line)]
            assert len(lines) == e["steps"], e


def test_number_ranges() -> None:
    for name, examples in SPLITS.items():
        found = [n for e in examples for n in numbers(e["question"])]
        if name == "ood-numbers":
            assert min(found) >= 20 and max(found) > 90
        elif name == "ood-numbers-near":
            assert min(found) == 21 and max(found) == 30
        else:
            assert min(found) == 1 and max(found) == 20, name


def test_phrasing_families() -> None:
    seen, unseen = sentence_patterns(SEEN), sentence_patterns(UNSEEN)
    for name, examples in SPLITS.items():
        for e in examples:
            for sentence in sentences(e["question"]):
                in_seen = any(p.match(sentence) for p in seen)
                in_unseen = any(p.match(sentence) for p in unseen)
                # every sentence comes from its split's family and from that one only
                assert in_unseen != in_seen, sentence
                assert in_unseen == (name == "ood-phrasing"), (name, sentence)
    # every unseen template is used, so the split does test all of them
    used = {
        p.pattern
        for e in SPLITS["ood-phrasing"]
        for s in sentences(e["question"])
        for p in unseen
        if p.match(s)
    }
    assert len(used) == len(unseen)


def test_only_ood_names_has_unseen_people_and_it_changes_nothing_else() -> None:
    unseen = {name for name, _ in UNSEEN_NAMES}
    for split, examples in SPLITS.items():
        people = {e["question"].split()[0] for e in examples if e["question"].split()[0][0].isupper()}
        named = {e["solution"].split()[0] for e in examples}  # "Zoe starts with 5 cards."
        if split == "ood-names":
            assert named == unseen, named  # every problem, and the solution names them too
        else:
            assert not named & unseen and not people & unseen, split
    objects = {word for pair in OBJECTS for word in pair}  # "Zoe starts with 5 cards." -> cards
    assert {e["solution"].splitlines()[0].split()[-1].rstrip(".") for e in SPLITS["ood-names"]} <= objects


def test_arithmetic_in_solutions_is_correct() -> None:
    operations = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}
    for examples in SPLITS.values():
        for e in examples:
            lines = e["solution"].splitlines()
            value = numbers(lines[0])[0]  # "Mia starts with 7 apples."
            for line in lines[1:-1]:
                a, op, b, c = ARITHMETIC.search(line).groups()
                assert int(a) == value, line  # each step continues from the previous result
                value = operations[op](int(a), int(b))
                assert value == int(c) and value >= 1, line
            assert lines[-1] == f"The answer is \\boxed{{{value}}}." and e["answer"] == str(value)


def test_gold_solutions_score_one_and_changed_answers_zero() -> None:
    for examples in SPLITS.values():
        for e in examples[:50]:
            completion = TASK.messages(e)["completion"][0]["content"]
            assert TASK.score(e, completion) == 1.0
            assert TASK.extract(completion) == e["answer"]
            wrong = completion.replace(f"\\boxed{{{e['answer']}}}", f"\\boxed{{{int(e['answer']) + 1}}}")
            assert TASK.score(e, wrong) == 0.0


def test_messages_use_the_dft_instruction() -> None:
    e = SPLITS["test"][0]
    view = TASK.messages(e)
    assert view["prompt"] == [
        {
            "role": "user",
            "content": e["question"]
            + "\nPlease reason step by step, and put your final answer within \\boxed{}.",
        }
    ]
    assert view["completion"] == [{"role": "assistant", "content": e["solution"]}]


def test_problems_are_short() -> None:
    # the task is learned by a ~3M-parameter model: in-domain problems stay small
    for name in ("train", "test", "ood-numbers", "ood-phrasing"):
        for e in SPLITS[name]:
            assert len(e["question"].split()) < 60 and len(e["solution"].split()) < 60


def test_make_problem_is_reusable_and_seeded() -> None:
    first = make_problem(random.Random(3), steps=2, low=1, high=20, templates=SEEN)
    assert first == make_problem(random.Random(3), steps=2, low=1, high=20, templates=SEEN)
    assert set(first) == {"question", "steps", "answer", "facts"} and len(first["steps"]) == 3
    assert [after for _, _, _, after in first["facts"]["ops"]][-1] == int(first["answer"])
    assert render_solution(first).endswith(f"The answer is \\boxed{{{first['answer']}}}.")


def test_registry_suggests_the_task_name() -> None:
    assert isinstance(tasks.get("math-words"), MathWords)
    with pytest.raises(KeyError, match="did you mean 'math-words'"):
        tasks.get("math-wordz")


def test_unknown_split_names_the_splits() -> None:
    with pytest.raises(ValueError, match="ood-phrasing, ood-steps, ood-numbers"):
        TASK.load("validation")


def test_the_off_style_says_the_same_steps_and_answer_otherwise() -> None:
    # The numbered style: the same results after every "=" and the same final answer, in another
    # wording and layout (no line of the task's own style survives).
    for e in SPLITS["train"][:300] + SPLITS["ood-steps"][:50]:
        numbered = TASK.restyle(e, "numbered")
        assert numbered["question"] == e["question"] and numbered["answer"] == e["answer"]
        own, other = e["solution"], numbered["solution"]
        assert not set(own.splitlines()) & set(other.splitlines())
        spans = [[text[a:b] for a, b in TASK.deciding_spans(text)] for text in (own, other)]
        assert spans[0] == spans[1] and spans[0][-1] == e["answer"]
        assert len(other.splitlines()) == len(own.splitlines()) + 1  # an opening line, a numbered list
    assert TASK.restyle(SPLITS["train"][0], "steps") is SPLITS["train"][0]
    with pytest.raises(ValueError, match="no solution style 'terse': its styles are steps, numbered"):
        TASK.restyle(SPLITS["train"][0], "terse")


def test_grading_does_not_depend_on_the_style() -> None:
    # Each style's right answer is right, and the same solution with another number boxed is wrong.
    for e in SPLITS["test"][:100]:
        for style in TASK.styles:
            text = TASK.restyle(e, style)["solution"]
            assert TASK.score(e, text) == 1.0, (style, text)
            wrong = str(int(e["answer"]) + 1)
            assert TASK.score(e, text.replace(f"\\boxed{{{e['answer']}}}", f"\\boxed{{{wrong}}}")) == 0.0
