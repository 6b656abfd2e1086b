"""easy-vqa: questions about one coloured shape in a 64 x 64 picture, answered with one word.

Data: the ``easy-vqa`` package (real images and questions, offline): 38,575 train and 9,673 test
questions over 4,000 and 1,000 pictures; 13 answers (yes, no, circle, rectangle, triangle and eight
colours). Scored by exact match of the answer word (case, spaces and a final period ignored; a
``\\boxed{}`` answer is read too). Each split comes in a fixed shuffled order, so ``--eval-limit``
takes a sample of pictures rather than the first few.

>>> from tasks.easy_vqa import EasyVQA
>>> task = EasyVQA()
>>> example = task.load("test", limit=1)[0]
>>> sorted(example)
['answer', 'id', 'image', 'question']
>>> task.score(example, example["answer"].capitalize() + ".")
1.0
"""

from __future__ import annotations

import random
import re
from typing import Any

from tasks.base import Split, Task
from tasks.math_grading import last_box

INSTRUCTION = "Answer with one word."


def normalize(answer: str) -> str:
    return re.sub(r"[\s.!]+$", "", answer.strip().lower())


class EasyVQA(Task):
    name = "easy-vqa"
    domain = "vlm"
    splits = (
        Split("train", "train", "38,575 questions over 4,000 pictures"),
        Split("test", "test", "9,673 questions over 1,000 other pictures"),
    )
    max_new_tokens = 16

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        import easy_vqa

        self.split(split)
        if split == "train":
            questions, answers, image_ids = easy_vqa.get_train_questions()
            paths = easy_vqa.get_train_image_paths()
        else:
            questions, answers, image_ids = easy_vqa.get_test_questions()
            paths = easy_vqa.get_test_image_paths()
        examples = [
            {"id": f"{split}-{i}", "question": q, "answer": a, "image": paths[image_id]}
            for i, (q, a, image_id) in enumerate(zip(questions, answers, image_ids))
        ]
        random.Random(0).shuffle(examples)
        return examples[:limit]

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        text = f"{example['question'].capitalize()} {INSTRUCTION}"
        return {
            "prompt": [
                {
                    "role": "user",
                    "content": [{"type": "image", "image": example["image"]}, {"type": "text", "text": text}],
                }
            ],
            "completion": [{"role": "assistant", "content": example["answer"]}],
        }

    def extract(self, completion: str) -> str:
        if "\\boxed" in completion:
            return normalize(last_box(completion) or "")
        return normalize(completion)

    def score(self, example: dict[str, Any], completion: str) -> float:
        return 1.0 if self.extract(completion) == normalize(example["answer"]) else 0.0
