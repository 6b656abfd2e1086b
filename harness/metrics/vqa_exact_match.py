"""Exact match of one-word VQA answers as the harness scores easy-vqa: an ``evaluate`` metric.

``predictions`` are completions (a ``\\boxed{}`` answer is read from its box), ``references`` the gold
answers; both normalized as :class:`tasks.easy_vqa.EasyVQA` does (lower case, trailing dots,
exclamation marks and spaces dropped), through its own ``score``.

    import evaluate
    from harness.metrics import path
    evaluate.load(path("vqa_exact_match")).compute(predictions=["Circle."], references=["circle"])
    # {'accuracy': 1.0}
"""

import datasets
import evaluate

from tasks.easy_vqa import EasyVQA

_DESCRIPTION = "Exact match after easy-vqa's normalization."
_INPUTS = "predictions: list of completions (str). references: list of gold answers (str)."


class VqaExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        task = EasyVQA()
        scores = [
            task.score({"answer": gold}, completion) for completion, gold in zip(predictions, references)
        ]
        return {"accuracy": sum(scores) / len(scores) if scores else 0.0}
