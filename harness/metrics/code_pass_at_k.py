"""Execution-based pass@k with the harness's sandbox: an ``evaluate`` metric, loaded by path.

The interface follows ``evaluate``'s own ``code_eval``: ``predictions`` is, per problem, a list of
candidate programs; ``references`` is, per problem, its test source defining ``check(candidate)``
(HumanEval's ``test`` field); ``entry_points`` names the function each program must define. Unlike
``code_eval`` the tests do not run inside the program's process: each program runs in the sandbox
(:mod:`harness.sandbox.check`) and the tests call it across the wall, so a program cannot forge its
verdict. pass@k is the unbiased estimator of :func:`harness.stats.pass_at_k`, averaged over problems.

    import evaluate
    from harness.metrics import path
    metric = evaluate.load(path("code_pass_at_k"))
    metric.compute(
        predictions=[["def add(a, b):\\n    return a + b\\n", "def add(a, b):\\n    return a - b\\n"]],
        references=["def check(candidate):\\n    assert candidate(1, 2) == 3\\n"],
        entry_points=["add"], k=[1, 2],
    )
    # {'pass@1': 0.5, 'pass@2': 1.0, 'verdicts': [['passed', 'failed']]}
"""

import math

import datasets
import evaluate

from harness.sandbox.check import CheckFunction, check_many
from harness.sandbox.process import Limits
from harness.stats import pass_at_k

_DESCRIPTION = "Unbiased pass@k of candidate programs, each run in the harness's sandbox."
_INPUTS = """
predictions: list (one per problem) of lists of candidate programs (str).
references: list (one per problem) of test sources defining check(candidate) (str).
entry_points: list (one per problem) of the function name each program defines.
k: the k of pass@k (default [1]); timeout: seconds per program, tests included (default 5.0).
Returns: pass@k for each k (mean over problems), and each candidate's verdict.
"""


class CodePassAtK(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Value("string"),
                }
            ),
        )

    def _compute(self, predictions, references, entry_points=None, k=(1,), timeout=5.0):
        if entry_points is None or len(entry_points) != len(references):
            raise ValueError("entry_points: give one function name per problem")
        jobs = [
            (program, CheckFunction(entry, test))
            for candidates, test, entry in zip(predictions, references, entry_points)
            for program in candidates
        ]
        limits = Limits(timeout_s=timeout, cpu_s=math.ceil(timeout))
        verdicts = iter(check_many(jobs, limits=limits))
        per_problem = [[next(verdicts).verdict for _ in candidates] for candidates in predictions]
        scores = {}
        for each in [k] if isinstance(k, int) else k:
            if all(len(found) >= each for found in per_problem):  # pass@k needs k samples of every problem
                values = [pass_at_k(len(found), found.count("passed"), each) for found in per_problem]
                scores[f"pass@{each}"] = sum(values) / len(values)
        return {**scores, "verdicts": per_problem}
