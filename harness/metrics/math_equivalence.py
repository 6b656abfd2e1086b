"""Math answer equivalence as the harness grades math: an ``evaluate`` metric, loaded by path.

``predictions`` are completions (the answer is found in them as the harness finds it: the last
``\\boxed{}``, else a stated final answer, else the last number); ``references`` are gold answers
(``\\frac{1}{2}``, ``(1, 2)``, ``E``). Both go through :func:`tasks.math_grading.grade_math`, which
compares with Math-Verify.

    import evaluate
    from harness.metrics import path
    metric = evaluate.load(path("math_equivalence"))
    metric.compute(predictions=["so \\\\boxed{0.5}"], references=["\\\\frac{1}{2}"])
    # {'accuracy': 1.0, 'verdicts': {'correct': 1}}
"""

from collections import Counter

import datasets
import evaluate

from tasks.math_grading import grade_math

_DESCRIPTION = "Whether each completion's final answer equals its gold answer (Math-Verify)."
_INPUTS = """
predictions: list of completions (str).
references: list of gold answers (str).
Returns: accuracy (the mean of the 0/1 grades) and verdicts (count of correct, wrong, unparsed,
no-answer).
"""


class MathEquivalence(evaluate.Metric):
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
        grades = [grade_math(gold, completion) for completion, gold in zip(predictions, references)]
        accuracy = sum(g.score for g in grades) / len(grades) if grades else 0.0
        return {"accuracy": accuracy, "verdicts": dict(Counter(g.verdict for g in grades))}
