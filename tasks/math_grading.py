r"""Grade a model's math completion against a gold answer: extract the final answer, compare with Math-Verify.

Extraction follows what models trained on boxed solutions write: the content of the last ``\boxed{...}``
(or ``\fbox{...}``, or ``\boxed 6``) wins; without a box, "The answer is X", "answer: X", a trailing
"= X" and finally the last number in the text are tried. Comparison is symbolic through Math-Verify, so
``1,000`` equals ``1000``, ``0.5`` equals ``\frac{1}{2}`` and ``x = 6`` equals ``6``.

>>> extract_answer(r"7 + 5 = 12, so \boxed{12}. Wait: 7 + 4 = 11, so \boxed{11}.")
'11'
>>> answers_match("0.5", r"\frac{1}{2}"), answers_match("6", "-6")
(True, False)
>>> score_math("1000", r"The total is $\boxed{1,000}$.")
1.0

Math-Verify behaviours worth knowing (checked on math-verify 0.9):

* ``verify(gold, target)`` takes the gold first; an equation target is compared through its right-hand
  side, so ``x = 6`` and even ``2 + 4 = 6`` match ``6``, while ``6 = x`` does not.
* ``\boxed{6.}`` and ``\boxed{3\%}`` do not parse but ``$6.$`` and ``$3\%$`` do, hence ``$...$`` first.
* A LaTeX thin space as thousands separator parses as a product: ``1\,000`` becomes ``1*0 = 0``. We drop
  such separators before parsing.
* It guards parsing and comparison with ``signal.alarm``, which raises in any thread but the main one.
"""

from __future__ import annotations

import re
import threading

from math_verify import parse, verify

# Real answers are short; a longer "answer" is runaway generation, and sympy time grows with length.
MAX_ANSWER_CHARS = 300
# Seconds Math-Verify may spend per parse or comparison (signal.alarm takes whole seconds); a power
# tower like 10^{10^{10^{10}}} otherwise burns the 5 s default.
TIMEOUT_S = 2

_BOX = re.compile(r"\\(?:boxed|fbox)")
_ANSWER_IS = re.compile(r"answer\s*(?:is\b\s*:?|:)", re.IGNORECASE)
# A sentence ends at a period followed by a space or the end; "6.5" keeps its period.
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n")
_NUMBER = re.compile(r"(?<![\w.])(?:(?<![\d)])-)?\d+(?:,\d{3})*(?:\.\d+)?")
# Thousands separators that Math-Verify misreads: 1\,000, 1\ 000, 1\!000, 1~000.
_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\ |\\!|~)(?=\d{3}(?!\d))")


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


def _text_fallback(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        tail = text[matches[-1].end() :]
        end = _SENTENCE_END.search(tail)
        answer = _clean(tail[: end.start()] if end else tail)
        if answer:
            return answer
    last_line = text.rstrip().rsplit("\n", 1)[-1]
    if "=" in last_line:
        answer = _clean(last_line.rsplit("=", 1)[1])
        if answer:
            return answer
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def extract_answer(completion: str) -> str | None:
    r"""The final answer in ``completion``: the last non-empty box, else a textual fallback, else None."""
    # From the last box backwards: usually the first one tried answers, so this stays linear.
    for match in reversed(list(_BOX.finditer(completion))):
        content = _box_content(completion, match.end())
        if content is not None and _clean(content):
            return _clean(content)
    return _text_fallback(completion)


def _normalize(answer: str) -> str:
    answer = _clean(answer).lower()
    answer = re.sub(r"\\text\{([^{}]*)\}", r"\1", answer)
    answer = re.sub(r"\\left|\\right|\s", "", answer)
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", answer)


def _parse(answer: str, timeout: int | None) -> list:
    answer = _THOUSANDS.sub("", answer)
    # "$...$" first: it parses "6." and "3\%", which the boxed form rejects.
    for wrapped in (f"${answer}$", f"\\boxed{{{answer}}}"):
        parsed = parse(wrapped, parsing_timeout=timeout)
        if parsed:
            return parsed
    return []


def answers_match(gold: str, predicted: str | None) -> bool:
    """Whether ``predicted`` (an extracted answer) equals ``gold``, symbolically when both parse."""
    if predicted is None:
        return False
    gold, predicted = _clean(gold), _clean(predicted)
    if not gold or not predicted:
        return False
    if len(predicted) > MAX_ANSWER_CHARS:
        return _normalize(gold) == _normalize(predicted)
    # signal.alarm only works in the main thread; elsewhere run without Math-Verify's timeout rather
    # than have every answer scored 0 by the ValueError it raises.
    timeout = TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = _parse(gold, timeout)
        predicted_parsed = _parse(predicted, timeout)
        # Math-Verify returns [sympy, string]; its own string fallback compares the raw strings. A
        # timed-out comparison is False, so equal strings still get the string check below.
        if (
            gold_parsed
            and predicted_parsed
            and verify(gold_parsed, predicted_parsed, timeout_seconds=timeout)
        ):
            return True
    except Exception:
        # A hostile string must cost a 0, never a crashed evaluation. (Its TimeoutException is a
        # BaseException, but Math-Verify already turns it into an empty parse or a False.)
        pass
    return _normalize(gold) == _normalize(predicted)


def score_math(gold: str, completion: str) -> float:
    """1.0 when the final answer of ``completion`` matches ``gold``, else 0.0."""
    return 1.0 if answers_match(gold, extract_answer(completion)) else 0.0
