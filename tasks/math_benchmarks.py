r"""The math benchmarks of the DFT paper's tables (and GSM8K), as evaluation tasks.

Each is one ``test`` split, read from its local copy under ``$HARNESS_DATA`` or from the hub
(:mod:`tasks.sources`), asked zero-shot with the paper's instruction ("Please reason step by step,
and put your final answer within \boxed{}."), and graded as Math-Verify grades
(:mod:`tasks.math_grading`), with the paper's protocol (``MathBenchmark.protocol``): 16 samples per
problem at temperature 1.0, top_p 1, up to 4,096 new tokens, the score being the mean over the
samples (Average@16). Flags given on the command line (``--temperature 0``) override it.

=================  ======================================  ======  ==========================================
task               source (hub id, subset, split)          rows    question -> gold answer
=================  ======================================  ======  ==========================================
``math-500``       HuggingFaceH4/MATH-500, test            500     ``problem`` -> ``answer``
``minerva-math``   math-ai/minervamath, test               272     ``question``/``problem`` -> ``answer``
                                                                   (or the last box of ``solution``)
``olympiadbench``  Hothan/OlympiadBench,                   674     ``question`` -> ``final_answer`` (a
                   OE_TO_maths_en_COMP, train                      list: its answers, joined by commas)
``aime24``         HuggingFaceH4/aime_2024, train          30      ``problem`` -> ``answer``
``amc23``          math-ai/amc23, test                     40      ``question`` -> ``answer``
``gsm8k``          openai/gsm8k, main, test                1,319   ``question`` -> ``answer`` after ``####``
=================  ======================================  ======  ==========================================

OlympiadBench is its English, open-ended, text-only maths part (``OE_TO_maths_en_COMP``), the part
the Qwen2.5-Math evaluation uses. Every task accepts both field spellings its copies use (the
Qwen2.5-Math evaluation's ``test.jsonl`` files write ``question`` where the hub writes
``problem``), so its copy of a benchmark works as a local file too. A row without the fields names
them and the file.

>>> import os, json, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "gsm8k.jsonl"), "w") as f:
...     _ = f.write(json.dumps({"question": "2 + 3?", "answer": "2 + 3 = 5\n#### 5"}) + "\n")
>>> os.environ["HARNESS_DATA"] = folder
>>> task = GSM8K()
>>> example = task.load("test")[0]
>>> example["answer"], task.score(example, "So there are $\\boxed{5}$.")
('5', 1.0)
>>> del os.environ["HARNESS_DATA"]
"""

from __future__ import annotations

from typing import Any, ClassVar

from tasks.base import Split, Task
from tasks.math_grading import MathAnswerTask, last_box
from tasks.sources import Source, field, load_rows

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class MathBenchmark(MathAnswerTask, Task):
    """A real math benchmark: a ``test`` split of ``{id, question, answer}`` rows from ``source``."""

    domain = "math"
    max_new_tokens = 4096  # the paper's evaluation budget
    # The paper's protocol: zero-shot, 16 samples at temperature 1.0, top_p 1 (Average@16).
    protocol = {"temperature": 1.0, "top_p": 1.0, "num_samples": 16}
    source: ClassVar[Source]
    question_fields: ClassVar[tuple[str, ...]] = ("problem", "question")
    answer_fields: ClassVar[tuple[str, ...]] = ("answer",)

    def gold(self, row: dict[str, Any], where: str, number: int) -> str:
        """The gold answer of a source row, as text."""
        return str(field(row, self.answer_fields, self.name, where, number)).strip()

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows, where = load_rows(self.name, self.source)
        examples = []
        for number, row in enumerate(rows[:limit], start=1):
            question = str(field(row, self.question_fields, self.name, where, number)).strip()
            answer = self.gold(row, where, number)
            if not answer:
                raise ValueError(f"{where} row {number}: {self.name} has an empty gold answer")
            key = row.get("unique_id") or row.get("id")
            name = key if key not in (None, "") else number - 1
            examples.append({"id": f"{self.name}/{name}", "question": question, "answer": answer})
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "prompt": [{"role": "user", "content": f"{example['question']}\n{INSTRUCTION}"}],
            "completion": [
                {"role": "assistant", "content": f"The final answer is $\\boxed{{{example['answer']}}}$."}
            ],
        }


class Math500(MathBenchmark):
    title = "Math500"
    name = "math-500"
    source = Source("HuggingFaceH4/MATH-500", split="test")
    splits = (Split("test", "test", "500 MATH competition problems (Lightman et al. 2023's subset)"),)


class MinervaMath(MathBenchmark):
    title = "Minerva Math"
    name = "minerva-math"
    source = Source("math-ai/minervamath", split="test")
    splits = (Split("test", "test", "272 undergraduate science and maths problems (Minerva's OCW courses)"),)

    def gold(self, row: dict[str, Any], where: str, number: int) -> str:
        if row.get("answer") not in (None, ""):
            return str(row["answer"]).strip()
        solution = str(field(row, ("solution",), self.name, where, number))
        boxed = last_box(solution)
        if not boxed:
            raise ValueError(f"{where} row {number}: {self.name}'s solution has no \\boxed{{}} answer")
        return boxed


class OlympiadBench(MathBenchmark):
    title = "Olympiad Bench"
    name = "olympiadbench"
    source = Source("Hothan/OlympiadBench", config="OE_TO_maths_en_COMP", split="train")
    question_fields = ("question", "problem")
    answer_fields = ("final_answer", "answer")
    splits = (
        Split(
            "test",
            "test",
            "674 olympiad problems: English, open-ended, text-only maths (OE_TO_maths_en_COMP)",
        ),
    )

    def gold(self, row: dict[str, Any], where: str, number: int) -> str:
        answer = field(row, self.answer_fields, self.name, where, number)
        answers = answer if isinstance(answer, list) else [answer]
        # Each final answer is written as "$...$"; several (is_multiple_answer) are one set.
        return ", ".join(str(a).strip().strip("$").strip() for a in answers)


class AIME24(MathBenchmark):
    title = "AIME24"
    name = "aime24"
    source = Source("HuggingFaceH4/aime_2024", split="train")
    splits = (Split("test", "test", "the 30 problems of AIME 2024 I and II (integer answers 0-999)"),)


class AMC23(MathBenchmark):
    title = "AMC23"
    name = "amc23"
    source = Source("math-ai/amc23", split="test")
    question_fields = ("question", "problem")
    splits = (Split("test", "test", "40 problems of AMC 2023 with numeric answers"),)


class GSM8K(MathBenchmark):
    title = "GSM8K"
    name = "gsm8k"
    source = Source("openai/gsm8k", config="main", split="test")
    question_fields = ("question",)
    splits = (Split("test", "test", "1,319 grade-school word problems (the test split)"),)

    def gold(self, row: dict[str, Any], where: str, number: int) -> str:
        answer = str(field(row, ("answer",), self.name, where, number))
        if "####" not in answer:
            raise ValueError(f"{where} row {number}: gsm8k's answer has no '#### <number>' line")
        return answer.rsplit("####", 1)[1].strip().replace(",", "")


BENCHMARKS = (Math500, MinervaMath, OlympiadBench, AIME24, AMC23, GSM8K)
# The columns of the paper's math table (Table 1), in its order: what a math training task is scored on.
PAPER_MATH_BENCHMARKS = ("math-500", "minerva-math", "olympiadbench", "aime24", "amc23")
