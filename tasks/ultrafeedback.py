"""UltraFeedback (openbmb/UltraFeedback, 63,967 prompts with four rated responses each): the DFT paper's
code-domain training data, evaluated on HumanEval and HumanEval+ as out-of-domain tasks, as the
paper's code table does.

As in the paper, each prompt is answered by its response with the best mean rating: the mean of the
four aspects GPT-4 rated (helpfulness, honesty, instruction following, truthfulness; an aspect rated
``N/A`` is left out of the mean), the first such response on a tie. A prompt with no rated response
is skipped (a few rows have none); a row without ``instruction`` or ``completions`` names the
missing field and the file.

>>> row = {"instruction": "Reverse a string in Python.", "completions": [
...     {"response": "s[::-1]", "annotations": {"helpfulness": {"Rating": "5"}, "honesty": {"Rating": "5"}}},
...     {"response": "Use a loop.", "annotations": {"helpfulness": {"Rating": "3"}, "honesty": {"Rating": "N/A"}}}]}
>>> best_response(row)
's[::-1]'
"""

from __future__ import annotations

from typing import Any

from tasks.base import Split, Task
from tasks.sources import Source, field, load_rows

ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def mean_rating(completion: dict[str, Any]) -> float | None:
    """The mean of a response's numeric aspect ratings, or None when none is numeric."""
    annotations = completion.get("annotations") or {}
    ratings = []
    for aspect in ASPECTS:
        rating = (annotations.get(aspect) or {}).get("Rating")
        try:
            ratings.append(float(rating))
        except (TypeError, ValueError):  # "N/A", or the aspect is missing
            continue
    return sum(ratings) / len(ratings) if ratings else None


def best_response(row: dict[str, Any]) -> str | None:
    """The response of ``row`` with the best mean rating (the first on a tie), or None."""
    best, best_rating = None, None
    for completion in row.get("completions") or []:
        rating = mean_rating(completion)
        response = str(completion.get("response") or "").strip()
        if rating is not None and response and (best_rating is None or rating > best_rating):
            best, best_rating = response, rating
    return best


class UltraFeedback(Task):
    """UltraFeedback's prompts, each with its best-rated response; see the module docstring."""

    name = "ultrafeedback"
    domain = "code"
    source = Source("openbmb/UltraFeedback", split="train")
    graded = False
    splits = (Split("train", "train", "63,967 prompts, each with its best-rated of four responses"),)
    ood_tasks = ("humaneval", "humaneval-plus")
    max_new_tokens = 1024

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        rows, where = load_rows(self.name, self.source)
        examples = []
        for number, row in enumerate(rows, start=1):
            instruction = str(field(row, ("instruction",), self.name, where, number)).strip()
            if "completions" not in row:  # an empty list is a row with nothing rated: skipped
                field(row, ("completions",), self.name, where, number)  # the error naming the row
            response = best_response(row)
            if response is None:
                continue
            examples.append(
                {"id": f"{self.name}/{number - 1}", "instruction": instruction, "response": response}
            )
            if limit is not None and len(examples) == limit:
                break
        if not examples:
            raise ValueError(f"{where}: no row of {self.name} has a rated response")
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {
            "prompt": [{"role": "user", "content": example["instruction"]}],
            "completion": [{"role": "assistant", "content": example["response"]}],
        }

    def score(self, example: dict[str, Any], completion: str) -> float:
        raise ValueError("ultrafeedback is training data only; it is scored on its OOD tasks")
