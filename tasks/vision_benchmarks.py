r"""The vision-language benchmarks of the DFT paper (MathVerse, MathVision, WeMath) and MathVista, as
evaluation tasks, and WeThink, the paper's vision training data.

Each benchmark is one split read from its local copy under ``$HARNESS_DATA`` or the hub
(:mod:`tasks.sources`). A question is asked with its picture and its options, and the instruction
"Please reason step by step, and put your final answer within \boxed{}." (for multiple choice: "the
letter of the correct option"); a multiple-choice answer is graded by :mod:`tasks.choice_grading`, a
free-form one by Math-Verify (:mod:`tasks.math_grading`). The benchmarks' own pipelines grade with
a GPT judge (MathVerse, MathVista) or report composite scores (WeMath's four-dimensional metric);
this harness grades by rule, offline, and reports accuracy: comparable between its own rows, not
identical to the official leaderboards.

==============  ===========================================  =======  ======================================
task            source (hub id, subset, split)               rows     question, picture -> gold answer
==============  ===========================================  =======  ======================================
``mathverse``   AI4Math/MathVerse, testmini, testmini        3,940    ``question`` (options inline),
                                                                      ``image`` -> ``answer`` (a letter or
                                                                      a value); 788 problems x 5 versions
``mathvision``  MathLLMs/MathVision, test                    3,040    ``question``, ``options`` (list, 5 or
                                                                      none), ``decoded_image`` -> ``answer``
``wemath``      We-Math/We-Math, testmini                    1,740    ``question``, ``option`` ("A. ..;B.
                                                                      .."), ``image_path`` -> a letter
``mathvista``   AI4Math/MathVista, testmini                  1,000    ``question``, ``choices`` (list or
                                                                      null), ``decoded_image`` ->
                                                                      ``answer`` (an option's text)
``wethink``     yangjie-cv/WeThink_Multimodal_Reasoning_     ~120k    train: ``problem``, ``image_path`` ->
                120K, train                                           ``refined_cot``
==============  ===========================================  =======  ======================================

A picture is a decoded image (the hub's), a ``{"bytes": ...}`` dict (a parquet copy), or a path,
relative to the local copy's folder (the benchmarks' GitHub JSON files write paths). WeThink's hub
file has paths only: its pictures are LLaVA-CoT-100k's (``Xkev/LLaVA-CoT-100k``, ``image.zip``),
unpacked into the local copy's folder ``$HARNESS_DATA/wethink/`` beside the JSONL.

>>> options = {"A": "40°", "B": "60°"}
>>> task = MathVerse()
>>> example = {"id": "mathverse/1", "question": "?", "image": None, "answer": "B", "options": options}
>>> task.grade([(example, "So the angle is 60°. Answer: B")])[0]["score"]
1.0
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, ClassVar

from tasks.base import Split, Task
from tasks.choice_grading import LETTERS, grade_choice, lettered, options_in
from tasks.math_grading import MathAnswerTask, grade_math
from tasks.sources import Source, field, load_rows

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = "Please reason step by step, and put the letter of the correct option within \\boxed{}."
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def picture(value: Any, where: str, number: int) -> Any:
    """A picture for a message's image part: a decoded image as it is, a parquet ``{"bytes"}`` dict
    decoded, a path made absolute against the local copy's folder (``where``, row ``number``)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, dict) and value.get("path"):
        value = value["path"]
    if isinstance(value, str) and value:
        path = Path(value)
        if not path.is_absolute():
            folder = Path(where) if Path(where).is_dir() else Path(where).parent
            path = folder / path
        return str(path)
    raise ValueError(f"{where} row {number}: not a picture: {str(value)[:80]!r}")


def final_part(completion: str) -> str:
    """What the grader reads: the last ``<answer>...</answer>`` of a completion trained on WeThink's
    format, or the whole completion."""
    tags = _ANSWER_TAG.findall(completion)
    return f"\\boxed{{{tags[-1].strip()}}}" if tags else completion


class VisionBenchmark(MathAnswerTask, Task):
    """A vision-language benchmark: one split of ``{id, question, image, answer, options}`` rows."""

    domain = "vlm"
    max_new_tokens = 2048
    source: ClassVar[Source]
    image_fields: ClassVar[tuple[str, ...]] = ("decoded_image", "image")

    def example(self, row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
        """``{question, answer, options}`` of one source row (``options`` empty for free-form)."""
        raise NotImplementedError

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows, where = load_rows(self.name, self.source)
        examples = []
        for number, row in enumerate(rows[:limit], start=1):
            parts = self.example(row, where, number)
            if not str(parts["answer"]).strip():
                raise ValueError(f"{where} row {number}: {self.name} has an empty gold answer")
            image = picture(field(row, self.image_fields, self.name, where, number), where, number)
            key = next(
                (row[k] for k in ("sample_index", "pid", "id", "ID") if row.get(k) not in (None, "")), None
            )
            examples.append(
                {"id": f"{self.name}/{key if key is not None else number - 1}", "image": image, **parts}
            )
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        instruction = CHOICE_INSTRUCTION if example["options"] else INSTRUCTION
        text = f"{example['question']}\n{instruction}".strip()
        return {
            "prompt": [
                {
                    "role": "user",
                    "content": [{"type": "image", "image": example["image"]}, {"type": "text", "text": text}],
                }
            ],
            "completion": [
                {"role": "assistant", "content": f"The answer is $\\boxed{{{example['answer']}}}$."}
            ],
        }

    def grade(self, pairs: list[tuple[dict, str]]) -> list[dict]:
        graded = []
        for example, completion in pairs:
            text = final_part(completion)
            if example["options"]:
                grade = grade_choice(str(example["answer"]), text, example["options"])
            else:
                grade = grade_math(str(example["answer"]), text)
            graded.append({"score": grade.score, "verdict": grade.verdict, "answer": grade.answer})
        return graded

    def score(self, example: dict[str, Any], completion: str) -> float:
        return self.grade([(example, completion)])[0]["score"]


class MathVerse(VisionBenchmark):
    title = "MathVerse"
    name = "mathverse"
    source = Source("AI4Math/MathVerse", config="testmini", split="testmini")
    splits = (
        Split("test", "test", "testmini: 788 problems in 5 versions, from text-dominant to vision-only"),
    )

    def example(self, row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
        answer = str(field(row, ("answer",), self.name, where, number)).strip()
        question = str(row.get("question") or "").strip()
        if not question:  # the vision-only version: the question is in the picture
            question = "Answer the question shown in the image."
        options: dict[str, str] = {}
        if row.get("question_type") == "multi-choice":
            # Vision-only rows show their options in the picture: any of A-E may be chosen.
            options = options_in(question) or {letter: "" for letter in LETTERS[:5]}
        return {"question": question, "answer": answer, "options": options}


class MathVision(VisionBenchmark):
    title = "MathVision"
    name = "mathvision"
    source = Source("MathLLMs/MathVision", split="test")
    splits = (Split("test", "test", "3,040 competition problems with pictures (MATH-Vision's test set)"),)

    def example(self, row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
        question = str(field(row, ("question",), self.name, where, number))
        question = re.sub(r"<image\d*>", "", question).strip()
        answer = str(field(row, ("answer",), self.name, where, number)).strip()
        options = lettered(row.get("options") or [])
        if options:
            question += "\nChoices: " + " ".join(f"{letter}. {text}" for letter, text in options.items())
        return {"question": question, "answer": answer, "options": options}


class WeMath(VisionBenchmark):
    title = "WeMath"
    name = "wemath"
    source = Source("We-Math/We-Math", split="testmini")
    image_fields = ("image_path", "image")
    splits = (Split("test", "test", "testmini: 1,740 multiple-choice questions of 525 multi-step problems"),)

    def example(self, row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
        question = str(field(row, ("question",), self.name, where, number)).strip()
        option = str(field(row, ("option",), self.name, where, number))
        answer = str(field(row, ("answer",), self.name, where, number)).strip()
        options = options_in(option)
        if not options:
            raise ValueError(
                f"{where} row {number}: wemath's option field has no lettered options: {option[:80]!r}"
            )
        return {"question": f"{question}\nOptions: {option.strip()}", "answer": answer, "options": options}


class MathVista(VisionBenchmark):
    title = "MathVista"
    name = "mathvista"
    source = Source("AI4Math/MathVista", split="testmini")
    splits = (Split("test", "test", "testmini: 1,000 questions over charts, plots, geometry and puzzles"),)

    def example(self, row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
        question = str(field(row, ("question",), self.name, where, number)).strip()
        answer = str(field(row, ("answer",), self.name, where, number)).strip()
        options = lettered(row.get("choices") or [])
        if options:  # the gold answer is an option's text: graded by the letter of that option
            question += "\nChoices:\n" + "\n".join(f"({letter}) {text}" for letter, text in options.items())
            if not any(text == answer for text in options.values()):
                raise ValueError(
                    f"{where} row {number}: mathvista's answer {answer!r} is none of its choices"
                )
        return {"question": question, "answer": answer, "options": options}


class WeThink(Task):
    """WeThink's multimodal reasoning rows: ``problem`` with its picture, answered by ``refined_cot``
    (WeThink's ``<think>`` reasoning and ``<answer>``), evaluated on the paper's three benchmarks."""

    name = "wethink"
    domain = "vlm"
    source = Source("yangjie-cv/WeThink_Multimodal_Reasoning_120K", split="train")
    graded = False
    splits = (Split("train", "train", "~120k multimodal reasoning rows (pictures from LLaVA-CoT-100k)"),)
    ood_tasks = ("mathverse", "mathvision", "wemath")
    max_new_tokens = 2048

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows, where = load_rows(self.name, self.source)
        examples = []
        for number, row in enumerate(rows[:limit], start=1):
            problem = str(field(row, ("problem",), self.name, where, number)).strip()
            solution = str(field(row, ("refined_cot",), self.name, where, number)).strip()
            image = picture(field(row, ("image_path", "image"), self.name, where, number), where, number)
            if isinstance(image, str) and not Path(image).exists():
                raise ValueError(
                    f"{where} row {number}: picture {image} not found; WeThink's pictures are "
                    "LLaVA-CoT-100k's (Xkev/LLaVA-CoT-100k, image.zip): unpack them beside the JSONL "
                    "in $HARNESS_DATA/wethink/"
                )
            examples.append(
                {"id": f"{self.name}/{number - 1}", "question": problem, "solution": solution, "image": image}
            )
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "prompt": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "image": example["image"]},
                        {"type": "text", "text": example["question"]},
                    ],
                }
            ],
            "completion": [{"role": "assistant", "content": example["solution"]}],
        }

    def score(self, example: dict[str, Any], completion: str) -> float:
        raise ValueError("wethink is training data only; it is scored on its OOD tasks")


BENCHMARKS = (MathVerse, MathVision, WeMath, MathVista)
