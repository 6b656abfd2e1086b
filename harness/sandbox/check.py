"""Grade a model-written program by running it in the sandbox against hidden tests it cannot forge.

The program runs in :func:`harness.sandbox.process.run_python` beside a small driver
(``harness/sandbox/driver.py``) that loads it and answers function calls over a pipe. The tests run
here, in the harness: each call's arguments go in, the answer comes back as plain data (``None``,
numbers, complex numbers, strings, bytes, lists, tuples, sets, dicts; nothing else crosses), and
the comparison with the expected value happens here. So:

- the hidden tests and expected values are never in the sandbox: the program cannot read them;
- exiting early (``sys.exit(0)``, ``os._exit(0)``), even with status 0, leaves calls unanswered:
  failed; patching builtins, ``__eq__`` or the driver changes only what the program answers, and an
  answer is decoded here into a plain value;
- the verdict is ``passed`` only when every check ran here to the end and the program was alive and
  answering throughout.

Verdicts: ``passed``, ``failed`` (wrong answer, exception, no code, syntax error, early exit),
``timeout`` (wall or CPU limit), ``memory`` (``MemoryError`` or the address-space limit),
``crashed`` (killed by a signal or by the sandbox's process limit).

>>> check_one("def add(a, b):\\n    return a + b\\n", CallTests("add", [([1, 2], 3)])).verdict
'passed'
>>> check_one("import sys\\nsys.exit(0)\\n", CallTests("add", [([1, 2], 3)])).verdict
'failed'
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.sandbox.driver import MAX_LINE, Unencodable, decode, encode
from harness.sandbox.process import Channel, Limits, run_python

DRIVER = Path(__file__).with_name("driver.py").read_text(encoding="utf-8")
VERDICTS = ("passed", "failed", "timeout", "memory", "crashed")
DEFAULT_LIMITS = Limits()


class ProgramEnded(Exception):
    """The program stopped answering (it exited, was killed, or sent something that is not an answer)."""


class CandidateRaised(Exception):
    """The program's function raised; the message is ``Type: message`` from inside the sandbox."""


class Candidate:
    """Stands for the program's function in the tests: each call crosses into the sandbox."""

    def __init__(self, channel: Channel, entry_point: str, max_answer_bytes: int = MAX_LINE):
        self.channel, self.entry_point, self.max_answer_bytes = channel, entry_point, max_answer_bytes
        self.ended: str | None = None  # why the program stopped answering, once it did
        self.memory_error = False

    def receive(self) -> dict[str, Any]:
        line = self.channel.receive(self.max_answer_bytes)
        try:
            message = json.loads(line) if line is not None else None
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.ended = self.ended or "the program ended or sent something that is not an answer"
            raise ProgramEnded(self.ended)
        return message

    def __call__(self, *args: Any) -> Any:
        return self.call(list(args))

    def call(self, args: list[Any], reduce: str | None = None) -> Any:
        """The program's answer to ``entry_point(*args)``; with ``reduce="not_none"``, whether it
        answered something other than ``None`` (a bool answer comes back as it is)."""
        if self.ended:
            raise ProgramEnded(self.ended)
        try:
            message = {"call": self.entry_point, "args": encode(list(args))}
            request = json.dumps(message | ({"reduce": reduce} if reduce else {}))
        except Unencodable as error:  # a test of ours passed something we cannot send: our bug
            raise TypeError(f"cannot send the arguments of {self.entry_point}: {error}") from None
        if not self.channel.send(request):
            self.ended = "the program ended before the tests"
            raise ProgramEnded(self.ended)
        message = self.receive()
        if "raised" in message:
            self.memory_error |= str(message["raised"]).startswith("MemoryError")
            raise CandidateRaised(str(message["raised"]))
        try:
            return decode(message.get("value"))
        except ValueError as error:
            self.ended = f"the program sent something that is not a value ({error})"
            raise ProgramEnded(self.ended) from None


class CallTests:
    """Hidden tests as ``(args, expected)`` pairs: ``entry_point(*args) == expected`` for each."""

    def __init__(self, entry_point: str, cases: list[tuple[list[Any], Any]]):
        self.entry_point, self.cases = entry_point, cases

    def run(self, candidate: Candidate) -> None:
        for args, expected in self.cases:
            got = candidate(*args)
            if got != expected or type(got) is not type(expected):
                shown = ", ".join(map(repr, args))
                raise AssertionError(f"{self.entry_point}({shown}) returned {got!r}, expected {expected!r}")


class CheckFunction:
    """Tests written as Python (HumanEval's ``def check(candidate): assert ...``): ``source`` is
    trusted code (the task's own prompt helpers and tests), run here with the candidate proxy."""

    def __init__(self, entry_point: str, source: str):
        self.entry_point, self.source = entry_point, source

    def run(self, candidate: Candidate) -> None:
        namespace: dict[str, Any] = {"__name__": "hidden_tests"}
        exec(compile(self.source, "hidden_tests.py", "exec"), namespace)  # noqa: S102 - task data
        # Some checks name the function instead of using ``candidate`` (HumanEval/33): in the original
        # harness that name is the program's own function, so here it is the candidate too.
        namespace[self.entry_point] = candidate
        namespace["check"](candidate)


class RecordAnswers:
    """Not a test: calls a trusted program (a reference solution) on each of ``inputs`` and keeps its
    answers, the expected values of a differential test (:func:`reference_answers`)."""

    max_answer_bytes = 64 << 20  # a trusted reference's answers may be large (6.9 MB in HumanEval+)

    def __init__(self, entry_point: str, inputs: list[list[Any]], reduce: str | None = None):
        self.entry_point, self.inputs, self.reduce = entry_point, inputs, reduce
        self.answers: list[Any] = []

    def run(self, candidate: Candidate) -> None:
        for args in self.inputs:
            self.answers.append(candidate.call(args, self.reduce))


@dataclass
class Verdict:
    verdict: str
    detail: str  # why it did not pass (first failing check, error), "" when it passed
    stderr: str  # the tail of what the program wrote to stderr (its prints included)
    seconds: float

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


def check_one(
    program: str | None, tests: CallTests | CheckFunction, limits: Limits = DEFAULT_LIMITS
) -> Verdict:
    """Run ``program`` in a fresh sandbox and ``tests`` against it; see the module docstring."""
    if program is None or not program.strip():
        return Verdict("failed", "no code in the completion", "", 0.0)

    def converse(channel: Channel) -> tuple[Candidate, str | None]:
        # Tests may expect larger answers than the default bound (their right answers are large).
        candidate = Candidate(channel, tests.entry_point, getattr(tests, "max_answer_bytes", MAX_LINE))
        try:
            loaded = candidate.receive()
            if not loaded.get("loaded"):
                candidate.memory_error = str(loaded.get("raised", "")).startswith("MemoryError")
                return candidate, f"the program did not load: {loaded.get('raised', '')}"
            tests.run(candidate)
        except ProgramEnded as error:
            return candidate, str(error)
        except Exception as error:  # noqa: BLE001 - any failing check (assert, a raise passed on)
            return candidate, f"{type(error).__name__}: {error}"[:500]
        return candidate, candidate.ended

    ran = run_python(DRIVER, files={"candidate.py": program}, limits=limits, converse=converse, site=False)
    candidate, problem = ran.conversation
    if ran.status == "timeout":
        verdict, problem = (
            "timeout",
            f"over the time limit ({limits.timeout_s:g} s wall, {limits.cpu_s} s CPU)",
        )
    elif ran.status == "memory" or candidate.memory_error:
        verdict, problem = "memory", problem or "MemoryError"
    elif problem is None:  # every check ran here and every call was answered
        verdict = "passed"
    elif ran.status == "crashed":
        verdict = "crashed"
        problem = f"killed during the tests ({'; '.join(ran.notes) or f'exit {ran.returncode}'}): {problem}"
    else:
        verdict = "failed"
    return Verdict(verdict, problem or "", ran.stderr, ran.seconds)


def reference_answers(
    program: str,
    entry_point: str,
    inputs: list[list[Any]],
    reduce: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    partial: bool = False,
) -> list[Any]:
    """What ``program`` answers to ``entry_point(*args)`` for each of ``inputs``, run in the sandbox
    like any program (a dataset's reference solution is trusted to be right, not to be harmless). A
    ``ValueError`` says why when it does not answer every input; with ``partial``, the answers up to
    the first input it could not answer within ``limits`` come back instead (none answered is still
    the error).

    >>> reference_answers("def double(x):\\n    return 2 * x\\n", "double", [[1], [2.5], [(1, 2)]])
    [2, 5.0, (1, 2, 1, 2)]
    """
    recorder = RecordAnswers(entry_point, inputs, reduce)
    verdict = check_one(program, recorder, limits)
    if not verdict.passed and not (partial and recorder.answers):
        raise ValueError(
            f"the reference solution of {entry_point} answered {len(recorder.answers)} of "
            f"{len(inputs)} inputs ({verdict.verdict}: {verdict.detail})"
        )
    return recorder.answers


def check_many(
    jobs: list[tuple[str | None, CallTests | CheckFunction]],
    *,
    limits: Limits = DEFAULT_LIMITS,
    workers: int | None = None,
) -> list[Verdict]:
    """:func:`check_one` over many programs in parallel, verdicts in input order.

    Each sandbox is a process that mostly waits on the tests, so two per core keep the cores busy.
    """
    workers = workers or 2 * (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: check_one(*job, limits=limits), jobs))


__all__ = [
    "VERDICTS",
    "CallTests",
    "CheckFunction",
    "Verdict",
    "check_many",
    "check_one",
    "reference_answers",
]
