"""The paper's math benchmarks as tasks, offline: a handful of rows in each dataset's real schema
(as its hub copy or the Qwen2.5-Math evaluation's ``test.jsonl`` writes it) under ``$HARNESS_DATA``,
graded on realistic model outputs; a wrong schema or no data is one line naming the file or where
the task looked. Nothing here touches the network: the hub loader is replaced where it would run."""

from __future__ import annotations

import datasets
import pytest
from conftest import write_jsonl

import tasks
from tasks import sources

MATH_500 = [
    {
        "problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
        "solution": "... so the polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$",
        "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
        "subject": "Precalculus",
        "level": 2,
        "unique_id": "test/precalculus/807.json",
    },
    {
        "problem": "If $f(x) = \\frac{3x-2}{x-2}$, what is $f(-2) +f(-1)+f(0)$?",
        "solution": "... $\\boxed{\\frac{14}{3}}$",
        "answer": "\\frac{14}{3}",
        "subject": "Algebra",
        "level": 3,
        "unique_id": "test/algebra/2584.json",
    },
    {
        "problem": "Find all $x$ such that $x^2 - x \\ge 0$ and $x < 1$. Express in interval notation.",
        "solution": "...",
        "answer": "(-\\infty, 0]",
        "subject": "Intermediate Algebra",
        "level": 3,
        "unique_id": "test/intermediate_algebra/1.json",
    },
]
OLYMPIAD = [
    {
        "id": 1606,
        "question": "Xenia and Sergey play the following game. ... Find the least $N$.",
        "solution": ["The answer is $N=2$. ..."],
        "final_answer": ["2"],
        "context": None,
        "image_1": None,
        "modality": "Text-only",
        "difficulty": "Competition",
        "is_multiple_answer": False,
        "unit": None,
        "answer_type": "Numerical",
        "error": None,
        "question_type": "Open-ended",
        "subfield": "Combinatorics",
        "subject": "Math",
        "language": "English",
    },
    {
        "id": 1610,
        "question": "Find all pairs $(m, n)$ of positive integers satisfying the equation ...",
        "solution": ["..."],
        "final_answer": ["$(6,3),(9,3),(9,5),(54,5)$"],
        "is_multiple_answer": True,
        "answer_type": "Tuple",
        "language": "English",
    },
    {
        "id": 1700,
        "question": "Determine all real $x$ with ...",
        "solution": ["..."],
        "final_answer": ["$\\frac{1}{2}$", "$2$"],
        "is_multiple_answer": True,
        "answer_type": "Numerical",
        "language": "English",
    },
]
AIME = [
    {
        "id": 60,
        "problem": "Every morning Aya goes for a $9$-kilometer-long walk ... Find the number of minutes.",
        "solution": "...",
        "answer": "204",
        "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1",
        "year": "2024",
    },
    {"id": 61, "problem": "... Find $m+n$.", "solution": "...", "answer": "033", "url": "", "year": "2024"},
]
AMC = [
    {
        "id": 0,
        "question": "Cities $A$ and $B$ are $45$ miles apart. ... How many miles from City $A$?",
        "answer": 27.0,
    },
    {"id": 1, "question": "What is the value of ...?", "answer": 0.5},
]
MINERVA_HUB = [
    {
        "question": "Each of the two Magellan telescopes has a diameter of $6.5 \\mathrm{~m}$ ...",
        "answer": "1.6",
    }
]
MINERVA_QWEN = [
    {
        "problem": "Preamble: ... Compute the speed in m/s.",
        "solution": "... $\\boxed{7.5}$ m/s.",
        "type": "Physics",
    }
]
GSM8K = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {
        "question": "A robe takes 2 bolts ...",
        "answer": "It takes 2/2=<<2/2=1>>1 bolt of white fiber\n#### 1,000",
    },
]


# (task, rows, index, completion a model could write, expected score, gold answer as loaded)
GRADED = [
    ("math-500", MATH_500, 0, "So $(r,\\theta) = \\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$.", 1.0, None),
    ("math-500", MATH_500, 0, "So $(r,\\theta) = \\boxed{(3, \\pi)}$.", 0.0, None),
    (
        "math-500",
        MATH_500,
        1,
        "Adding, $f(-2)+f(-1)+f(0) = 2 + \\frac{5}{3} + 1 = \\boxed{14/3}$.",
        1.0,
        None,
    ),
    ("math-500", MATH_500, 2, "The solution set is $\\boxed{(-\\infty,0]}$.", 1.0, None),
    ("math-500", MATH_500, 2, "The solution set is $\\boxed{(-\\infty,0)}$.", 0.0, None),
    ("olympiadbench", OLYMPIAD, 0, "Therefore the least such $N$ is $\\boxed{2}$.", 1.0, "2"),
    ("olympiadbench", OLYMPIAD, 1, "The pairs are $\\boxed{(6,3),(9,3),(9,5),(54,5)}$.", 1.0, None),
    ("olympiadbench", OLYMPIAD, 1, "The pairs are $\\boxed{(6,3),(9,3)}$.", 0.0, None),
    # Several answers go in one box; of several boxes the last is the answer (the paper's code).
    ("olympiadbench", OLYMPIAD, 2, "So $x = \\boxed{\\frac12, 2}$.", 1.0, "\\frac{1}{2}, 2"),
    ("olympiadbench", OLYMPIAD, 2, "So $x = \\boxed{\\frac12}$ or $x = \\boxed{2}$.", 0.0, "\\frac{1}{2}, 2"),
    ("aime24", AIME, 0, "The walk takes $\\boxed{204}$ minutes.", 1.0, "204"),
    ("aime24", AIME, 1, "Hence $m+n=\\boxed{33}$.", 1.0, "033"),
    ("amc23", AMC, 0, "They meet $\\boxed{27}$ miles from City $A$.", 1.0, "27.0"),
    ("amc23", AMC, 1, "The value is $\\boxed{\\frac{1}{2}}$.", 1.0, "0.5"),
    ("minerva-math", MINERVA_HUB, 0, "The answer is $\\boxed{1.6}$ arcseconds.", 1.0, "1.6"),
    ("gsm8k", GSM8K, 0, "48 / 2 = 24, and 48 + 24 = 72. The answer is \\boxed{72}.", 1.0, "72"),
    ("gsm8k", GSM8K, 0, "She sold 72 clips.", 1.0, "72"),  # unboxed: Math-Verify's last number
    ("gsm8k", GSM8K, 1, "It takes \\boxed{1,000} bolts.", 1.0, "1000"),
    ("gsm8k", GSM8K, 1, "It takes \\boxed{100} bolts.", 0.0, "1000"),
]


@pytest.mark.parametrize(("name", "rows", "index", "completion", "expected", "gold"), GRADED)
def test_each_benchmark_loads_its_real_schema_and_grades_real_outputs(
    data_dir, name, rows, index, completion, expected, gold
):
    write_jsonl(data_dir / f"{name}.jsonl", rows)
    task = tasks.get(name)
    examples = task.load("test")
    assert len(examples) == len(rows) and task.eval_splits == ["test"] and task.domain == "math"
    example = examples[index]
    if gold is not None:
        assert example["answer"] == gold
    assert task.score(example, completion) == expected
    # The prompt is the paper's zero-shot instruction; the reference completion scores 1.
    prompt = task.messages(example)["prompt"][0]["content"]
    assert prompt.endswith("put your final answer within \\boxed{}.") and example["question"] in prompt
    assert task.score(example, task.messages(example)["completion"][0]["content"]) == 1.0


def test_ids_come_from_the_source_and_limits_are_prefixes(data_dir):
    write_jsonl(data_dir / "math-500.jsonl", MATH_500)
    task = tasks.get("math-500")
    assert [e["id"] for e in task.load("test")] == [f"math-500/{r['unique_id']}" for r in MATH_500]
    assert task.load("test", limit=2) == task.load("test")[:2]
    write_jsonl(data_dir / "gsm8k.jsonl", GSM8K)
    assert [e["id"] for e in tasks.get("gsm8k").load("test")] == ["gsm8k/0", "gsm8k/1"]


def test_minerva_reads_the_qwen_evaluation_copy_too(data_dir):
    write_jsonl(data_dir / "minerva-math.jsonl", MINERVA_QWEN)  # problem + a boxed solution
    example = tasks.get("minerva-math").load("test")[0]
    assert example["answer"] == "7.5" and example["question"].startswith("Preamble")


def test_a_parquet_file_and_a_saved_dataset_folder_are_local_copies_too(data_dir):
    datasets.Dataset.from_list(AIME).to_parquet(str(data_dir / "aime24.parquet"))
    assert [e["answer"] for e in tasks.get("aime24").load("test")] == ["204", "033"]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(AMC)}).save_to_disk(str(data_dir / "amc23"))
    assert [e["answer"] for e in tasks.get("amc23").load("test")] == ["27.0", "0.5"]


@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        (
            "math-500",
            [{"question": "x?", "answer": "1"}, {"solution": "no problem field"}],
            "row 2: math-500 needs the field 'problem' or 'question'; the row has solution",
        ),
        ("aime24", [{"problem": "x?"}], "row 1: aime24 needs the field 'answer'; the row has problem"),
        (
            "gsm8k",
            [{"question": "x?", "answer": "it is 5"}],
            "row 1: gsm8k's answer has no '#### <number>' line",
        ),
        (
            "olympiadbench",
            [{"question": "x?", "final_answer": []}],
            "row 1: olympiadbench needs the field 'final_answer' or 'answer'",
        ),
        (
            "minerva-math",
            [{"problem": "x?", "solution": "no box"}],
            "row 1: minerva-math's solution has no \\boxed{} answer",
        ),
        ("amc23", ["just a string"], "row 1: expected an object, got str"),
    ],
)
def test_a_row_without_the_fields_names_them_and_the_file(data_dir, name, rows, message):
    write_jsonl(data_dir / f"{name}.jsonl", rows)
    with pytest.raises(ValueError) as raised:
        tasks.get(name).load("test")
    assert str(data_dir / f"{name}.jsonl") in str(raised.value) and message in str(raised.value)


def test_broken_local_copies_are_one_line_naming_the_file(data_dir):
    (data_dir / "gsm8k.jsonl").write_text('{"question": "x?", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(ValueError, match=r"gsm8k.jsonl line 2: not valid JSON"):
        tasks.get("gsm8k").load("test")
    (data_dir / "aime24.json").write_text('{"problem": "not a list"}')
    with pytest.raises(ValueError, match=r"aime24.json: expected a JSON list of rows"):
        tasks.get("aime24").load("test")


def test_no_data_says_where_it_looked_and_how_to_make_a_local_copy(data_dir, monkeypatch):
    with pytest.raises(ValueError) as raised:
        tasks.get("olympiadbench").load("test")
    message = str(raised.value)
    assert "\n" not in message
    assert (
        f"no olympiadbench.jsonl/.jsonl.gz/.json/.parquet or olympiadbench/ in $HARNESS_DATA={data_dir}"
        in message
    )
    assert "Hothan/OlympiadBench (OE_TO_maths_en_COMP), split train could not be loaded (offline" in message
    assert (
        "huggingface-cli download --repo-type dataset Hothan/OlympiadBench --local-dir $HARNESS_DATA/olympiadbench"
        in message
    )
    monkeypatch.delenv(sources.DATA_ENV)
    with pytest.raises(
        ValueError, match=r"^\$HARNESS_DATA is not set, and the hub dataset HuggingFaceH4/MATH-500"
    ):
        tasks.get("math-500").load("test")
