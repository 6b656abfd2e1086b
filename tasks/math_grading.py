r"""Grade a model's math completion against a gold answer the way Math-Verify does.

The final answer is found by Math-Verify's own parsing of the whole completion: LaTeX first, a
``\boxed{}`` before anything else, then "final answer is" statements, then the last ``$...$`` or
plain expression.

**Several boxes: the last one is the answer.** The paper's evaluation code (Qwen2.5-Math's
``extract_answer``) takes the last ``\boxed{}``; Math-Verify alone would read every box as one set,
so ``\boxed{1} no no \boxed{2}`` would match the gold ``{1, 2}`` and a model that corrects itself
(``\boxed{7}. Wait: \boxed{8}``) would be graded on ``{7, 8}``. Before parsing, every box but the
last loses its ``\boxed`` command (its content stays as plain text), so Math-Verify reads one box.
A question with several answers expects them in one box, ``\boxed{3, 5}``. It is compared with Math-Verify's ``verify``, so intervals, tuples, sets, equations,
``\text{}`` answers and fractions written either way are graded as it grades them. The project's
own steps apply only where Math-Verify comes back empty-handed:

* thousands separators that it misreads (``1\,000`` is ``1*0`` to it) are removed first;
* an answer it finds but cannot turn into math (``\boxed{6.}``, ``\boxed{3\%}``) is parsed again
  as ``$6$``-style inline math, which it does read;
* when it finds no answer at all, a box it does not know (``\fbox``, ``\boxed 6``, an unclosed box
  cut at ``max_new_tokens``), "The answer is X", "Answer: X" or a trailing "= X" is tried;
* an answer over ``MAX_ANSWER_CHARS`` (runaway generation) is compared as text only, and a last box
  that long never reaches Math-Verify, whose parse of it would only run into its timeout.

:func:`grade_math` says how each completion went (``correct``, ``wrong``, ``unparsed``: an answer
was found but is not math, so only its text was compared; ``no-answer``), and evaluation counts
those verdicts in the record: an answer the grader cannot read is a wrong answer, counted, never a
crash.

>>> grade_math("[0,1)", "So the answer is $[0,1)$.").verdict
'correct'
>>> answers_match("0.5", r"\frac{1}{2}"), answers_match("6", "-6")
(True, False)
>>> score_math("1000", r"The total is $\boxed{1,000}$.")
1.0

Math-Verify behaviours worth knowing (checked on math-verify 0.9):

* A box it cannot read is no box to it: after ``7 + 19 = 26. The answer is \boxed16.`` or an
  empty ``\boxed{}`` it takes the last expression (26), so such a completion can be graded
  correct where the model's box said otherwise; our own box reading applies only when it finds
  nothing at all. Its choice is followed, as the benchmarks' own pipelines follow it.
* ``verify(gold, target)`` takes the gold first; an equation target is compared through its
  right-hand side, so ``x = 6`` matches ``6``, while ``6 = x`` does not.
* It guards parsing and comparison with ``signal.alarm``, which raises in any thread but the main
  one; elsewhere it runs without its timeout. Its one alarm is lost when it goes off inside a
  weakref callback; ``_bounded`` sends it again past ``BACKSTOP_S``.
"""

from __future__ import annotations

import _thread
import re
import signal
import threading
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

# Real answers are short; a longer "answer" is runaway generation, and sympy time grows with length.
MAX_ANSWER_CHARS = 300
# Seconds Math-Verify may spend per parse or comparison (signal.alarm takes whole seconds); a power
# tower like 10^{10^{10^{10}}} otherwise burns the 5 s default.
TIMEOUT_S = 2
# Math-Verify's timeout is one signal.alarm: when it goes off inside a weakref callback or a __del__,
# Python prints "Exception ignored" and the work runs on with no deadline (seen on CI: a 2 s parse
# took 8.5 s; a power tower could run for ever). From BACKSTOP_S seconds into a call the alarm is
# delivered again every REALARM_S until the call returns.
BACKSTOP_S = 5 * TIMEOUT_S
REALARM_S = 0.25
VERDICTS = ("correct", "wrong", "unparsed", "no-answer")

_BOX = re.compile(r"\\(?:boxed|fbox)")
_ANSWER_IS = re.compile(r"answer\s*(?:is\b\s*:?|:)", re.IGNORECASE)
# A sentence ends at a period followed by a space or the end; "6.5" keeps its period.
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n")
# Thousands separators that Math-Verify misreads: 1\,000, 1\ 000, 1\!000, 1~000.
_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\ |\\!|~)(?=\d{3}(?!\d))")


@dataclass(frozen=True)
class MathGrade:
    """How one completion was graded: its score, verdict (one of ``VERDICTS``) and the answer text
    that was compared (None when none was found)."""

    score: float
    verdict: str
    answer: str | None


@lru_cache(maxsize=1)
def _math_verify() -> SimpleNamespace:
    """Math-Verify's ``parse``, ``verify``, its timeout exception and our extraction for a model's
    answer (LaTeX with boxes first, then plain expressions), loaded at the first grade: its import
    brings sympy, about a second of CPU that a command only reading its flags or naming its tasks
    must not pay."""
    import math_verify
    from math_verify.errors import TimeoutException

    prediction = (
        math_verify.LatexExtractionConfig(boxed_match_priority=0),
        math_verify.ExprExtractionConfig(),
    )
    return SimpleNamespace(
        parse=math_verify.parse,
        verify=math_verify.verify,
        TimeoutException=TimeoutException,
        prediction=prediction,
    )


def _timeout() -> int | None:
    # signal.alarm only works in the main thread; elsewhere run without Math-Verify's timeout rather
    # than have every answer scored 0 by the ValueError it raises.
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _bounded(call, *args, fallback, backstop_s: float = BACKSTOP_S, **kwargs):
    """``call(*args, **kwargs)``, a Math-Verify function, with its alarm delivered again from
    ``backstop_s`` on; ``fallback`` when one ends it. Outside the main thread, where Math-Verify
    runs without its timeout (see ``_timeout``), the call runs as it is.

    >>> _bounded(lambda x: x + 1, 1, fallback=None)
    2
    """
    if _timeout() is None:
        return call(*args, **kwargs)
    # Math-Verify's own exception, so that its handlers inside the call end the call as its alarm does.
    TimeoutException = _math_verify().TimeoutException  # noqa: N806 - the class, named as Math-Verify does
    running = [True]  # cleared by a plain store, which no alarm can pre-empt
    done = threading.Event()

    def realarm() -> None:
        # interrupt_main runs the main thread's Python handler for SIGALRM: Math-Verify's own inside
        # its timeout, ours between them; it does nothing once the default handler is back.
        if done.wait(backstop_s):
            return
        while running[0]:
            _thread.interrupt_main(signal.SIGALRM)
            if done.wait(REALARM_S):
                return

    def expired(signum, frame):
        if running[0]:  # an alarm that arrives after the call returned is dropped
            raise TimeoutException(f"Math-Verify ran past {backstop_s} s")

    previous = signal.signal(signal.SIGALRM, expired)
    watchdog = threading.Thread(target=realarm, name="math-verify-backstop", daemon=True)
    try:
        try:
            watchdog.start()
            return call(*args, **kwargs)
        finally:
            running[0] = False
            done.set()
            if watchdog.ident is not None:  # it runs (an alarm can cut start() short)
                watchdog.join()
    except TimeoutException:  # from our handler or from Math-Verify's
        return fallback
    finally:
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


def _box_content(text: str, start: int) -> str | None:
    """Content of the box whose command ends at ``start``, or None when it has none."""
    rest = text[start:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        begin = start + (len(rest) - len(stripped)) + 1
        depth = 1
        for i in range(begin, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[begin:i]
        # Unclosed (usually a completion cut at max_new_tokens): take the rest, as Qwen's grader does.
        return text[begin:]
    if stripped and stripped is not rest:
        # "\boxed 6": the next token, up to whitespace or a closing "$".
        return re.split(r"[\s$]", stripped, maxsplit=1)[0]
    return None  # "\boxedfoo" or "\boxed" at the very end


def _clean(answer: str) -> str:
    answer = answer.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(left) and answer.endswith(right):
            answer = answer[len(left) : -len(right)]
    return answer.strip().strip("$").strip().rstrip(".").strip()


def last_box(completion: str) -> str | None:
    r"""The content of the last non-empty ``\boxed{}`` or ``\fbox{}`` (``\boxed 6`` and an unclosed
    box included), cleaned of ``$`` and a final period; None when there is none.

    >>> last_box(r"7 + 5 = 12, so \boxed{12}. Wait: 7 + 4 = 11, so $\boxed{11}$.")
    '11'
    """
    # From the last box backwards: usually the first one tried answers, so this stays linear.
    for match in reversed(list(_BOX.finditer(completion))):
        content = _box_content(completion, match.end())
        if content is not None and _clean(content):
            return _clean(content)
    return None


def _stated_answer(completion: str) -> str | None:
    """Our own last resort: a box Math-Verify does not read, "the answer is X" / "Answer: X", or
    the right-hand side of a trailing "= X"."""
    boxed = last_box(completion)
    if boxed:
        return boxed
    matches = list(_ANSWER_IS.finditer(completion))
    if matches:
        tail = completion[matches[-1].end() :]
        end = _SENTENCE_END.search(tail)
        answer = _clean(tail[: end.start()] if end else tail)
        if answer:
            return answer
    last_line = completion.rstrip().rsplit("\n", 1)[-1]
    if "=" in last_line:
        return _clean(last_line.rsplit("=", 1)[1]) or None
    return None


def _is_math(parsed: list) -> bool:
    """Whether a Math-Verify parse holds a math object (it appends the raw string either way)."""
    return any(not isinstance(item, str) for item in parsed)


def _parse_answer(answer: str, timeout: int | None) -> list:
    """An answer already cut out (a gold answer, or our own extraction) as Math-Verify objects."""
    answer = _THOUSANDS.sub("", answer)
    # "$...$" first: it parses "6." and "3\%", which the boxed form rejects.
    for wrapped in (f"${answer}$", f"\\boxed{{{answer}}}"):
        parsed = _bounded(_math_verify().parse, wrapped, parsing_timeout=timeout, fallback=[])
        if _is_math(parsed):
            return parsed
    return []


@lru_cache(maxsize=4096)
def _parse_gold(gold: str, timeout: int | None) -> list:
    """A gold answer's parse, once per answer: Average@16 grades 16 completions against each."""
    return _parse_answer(gold, timeout)


def _normalize(answer: str) -> str:
    answer = _clean(answer).lower()
    answer = re.sub(r"\\text\{([^{}]*)\}", r"\1", answer)
    answer = re.sub(r"\\left|\\right|\s", "", answer)
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", answer)


def _compare(gold: str, gold_parsed: list, answer: str, parsed: list, timeout: int | None) -> MathGrade:
    try:
        if (
            gold_parsed
            and _is_math(parsed)
            and _bounded(_math_verify().verify, gold_parsed, parsed, timeout_seconds=timeout, fallback=False)
        ):
            return MathGrade(1.0, "correct", answer)
    except Exception:  # noqa: BLE001 - a hostile string must cost a 0, never a crashed evaluation
        pass
    if _normalize(gold) == _normalize(answer):  # equal text, e.g. two identical unparsed answers
        return MathGrade(1.0, "correct", answer)
    return MathGrade(0.0, "wrong" if _is_math(parsed) else "unparsed", answer)


def last_box_only(completion: str) -> str:
    r"""``completion`` with the box commands of every box but the last removed (the several-boxes
    rule in the module docstring); unchanged with one box or none.

    >>> last_box_only(r"First \boxed{7}. Wait: \boxed{8}.")
    'First {7}. Wait: \\boxed{8}.'
    """
    boxes = list(_BOX.finditer(completion))
    # The last box with content, looked for from the end (usually the first tried), so that a
    # completion of many unclosed boxes stays linear; every box command before it goes.
    last = next((m for m in reversed(boxes) if _box_content(completion, m.end()) is not None), None)
    if last is None:
        return completion
    return _BOX.sub("", completion[: last.start()]) + completion[last.start() :]


def _find(completion: str, timeout: int | None) -> tuple[str | None, list]:
    """The answer text in ``completion`` and its Math-Verify parse (empty when it is not math)."""
    completion = last_box_only(completion)
    boxed = last_box(completion)
    if boxed is not None and len(boxed) > MAX_ANSWER_CHARS:
        # A runaway box is compared as text without Math-Verify: its parse would only time out, and
        # its signal.alarm can go off inside a weakref callback that swallows it (CI: 8.5 s, one box).
        return boxed, []
    try:
        text = _THOUSANDS.sub("", completion)
        found = _bounded(
            _math_verify().parse, text, _math_verify().prediction, parsing_timeout=timeout, fallback=[]
        )
    except Exception:  # noqa: BLE001 - Math-Verify already turns most failures into an empty parse
        found = []
    answer = str(found[-1]) if found else _stated_answer(completion)
    if not answer:
        return None, []
    if len(answer) > MAX_ANSWER_CHARS:  # runaway generation: compared as text only
        return answer, []
    if not _is_math(found):  # not math to Math-Verify (or ours): our cleaning, then parse again
        found = _parse_answer(_clean(answer), timeout)
    return answer, found


def grade_math(gold: str, completion: str) -> MathGrade:
    """Grade ``completion`` against ``gold`` (an answer such as ``\\frac{10}{9}``, ``(1,2)`` or ``E``);
    see the module docstring for the order in which the answer is looked for."""
    gold = _clean(gold)
    if not gold:
        raise ValueError("the gold answer is empty")
    timeout = _timeout()
    answer, found = _find(completion, timeout)
    if answer is None:
        return MathGrade(0.0, "no-answer", None)
    try:
        gold_parsed = _parse_gold(gold, timeout)
    except Exception:  # noqa: BLE001
        gold_parsed = []
    return _compare(gold, gold_parsed, answer, found, timeout)


def answers_match(gold: str, predicted: str | None) -> bool:
    """Whether ``predicted`` (an answer already cut out) equals ``gold``, symbolically when both parse."""
    if predicted is None or not _clean(predicted) or not _clean(gold):
        return False
    predicted = _clean(predicted)
    if len(predicted) > MAX_ANSWER_CHARS:
        return _normalize(gold) == _normalize(predicted)
    timeout = _timeout()
    try:
        gold_parsed, parsed = _parse_answer(_clean(gold), timeout), _parse_answer(predicted, timeout)
    except Exception:  # noqa: BLE001
        gold_parsed, parsed = [], []
    return _compare(_clean(gold), gold_parsed, predicted, parsed, timeout).score == 1.0


def extract_answer(completion: str) -> str | None:
    """The answer text that :func:`grade_math` compares, or None when it finds none."""
    return _find(completion, _timeout())[0]


# A step's result: the number written right after an equals sign ("18 + 14 = 32").
_STEP_RESULT = re.compile(r"=\s*(-?\d+(?:[.,]\d+)*)")


def deciding_spans(completion: str) -> list[tuple[int, int]]:
    r"""Where a worked solution decides its grade: the number after every ``=`` (each step's result)
    and the content of the last ``\boxed{}`` (the final answer), as character spans in order.

    >>> text = "Tom starts with 18 apples.\nHe has 14 more: 18 + 14 = 32.\nThe answer is \\boxed{32}."
    >>> [text[a:b] for a, b in deciding_spans(text)]
    ['32', '32']
    """
    spans = {match.span(1) for match in _STEP_RESULT.finditer(completion)}
    boxes = list(_BOX.finditer(completion))
    if boxes:
        start = boxes[-1].end()
        content = _box_content(completion, start)
        if content and completion[start:].lstrip().startswith("{"):
            begin = completion.index("{", start) + 1
            spans.add((begin, begin + len(content)))
    return sorted(spans)


class MathAnswerTask:
    """Mixin for a task whose examples hold a gold ``answer`` graded by :func:`grade_math`: the
    samples keep the answer compared, and the record counts each verdict. A solution's deciding
    tokens are its step results and its final answer (:func:`deciding_spans`)."""

    answer_key = "answer"

    def deciding_spans(self, completion: str) -> list[tuple[int, int]]:
        return deciding_spans(completion)

    def extract(self, completion: str) -> str:
        return extract_answer(completion) or ""

    def score(self, example: dict, completion: str) -> float:
        return grade_math(str(example[self.answer_key]), completion).score

    def grade(self, pairs: list[tuple[dict, str]]) -> list[dict]:
        grades = [grade_math(str(example[self.answer_key]), completion) for example, completion in pairs]
        return [{"score": g.score, "verdict": g.verdict, "answer": g.answer} for g in grades]


def score_math(gold: str, completion: str) -> float:
    """1.0 when the final answer of ``completion`` matches ``gold``, else 0.0."""
    return grade_math(gold, completion).score
