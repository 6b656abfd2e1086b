r"""How a MultiPL-E program is assembled from a chat model's answer, in seven languages.

A chat model asked to complete a function answers with a code block that usually repeats the
function whole, often with the prompt's comments, imports, helpers before or after it, a class or
namespace around it, and a ``main`` of its own. The program that is run is built from the prompt and
the tests, which are trusted, and from the answer's parts that belong in it:

    imports the prompt lacks (C++ ``#include``, Java ``import``, C# ``using``), hoisted to the top
    the prompt up to its signature line
    helpers the answer defines before the function
    the prompt's signature line, the answer's function body
    the function's closing brace (the tests' first line, where MultiPL-E's tests open with it)
    helpers the answer defines after the function (in JavaScript, TypeScript, PHP and Bash only
    its definitions: an example call there would run before the tests)
    the rest of the tests

Left out: the answer's copy of the signature and the prompt's comments, the class or namespace
wrapped around the function (its header and closing brace), ``main``, a ``package`` line, ``<?php``
and ``?>``, a shebang. Everything is found on the answer's text with comments and string literals
blanked out (:func:`masked`), so braces, parentheses and names inside them count for nothing.

>>> code = 'class Problem {\n    // add((2), (3)) {5}\n    public static long add(long x, long y) {\n        return x + y; // }\n    }\n}\n'
>>> found = find_definition(code, "add", "java")
>>> code[found.open_brace + 1 : found.close_brace].strip()
'return x + y; // }'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LINE_COMMENTS = {"sh": ("#",), "php": ("//", "#")}  # the others: //
# Lines the answer may carry that belong at the top of the program when the prompt lacks them.
IMPORT_LINES = {
    "cpp": r"#\s*include\b.*",
    "java": r"import\s+(static\s+)?[\w.]+(\.\*)?\s*;",
    "cs": r"using\s+(static\s+)?[\w.]+\s*;",
}
# Lines that never belong in the program.
DROP_LINES = {
    "java": r"package\s+[\w.]+\s*;",
    "cs": r"namespace\s+[\w.]+\s*;",
    "php": r"<\?php|\?>",
    "sh": r"#!.*",
}
ENTRY_POINTS = {"cpp": "main", "java": "main", "cs": "Main"}
# Where statements may stand at the top level, only definitions are kept after the function: an
# example call there (``console.log(add())``) would run before the tests and could end the program.
DEFINITIONS = {
    "js": r"(export\s+)?(async\s+)?function\b|(export\s+)?class\b"
    r"|(const|let|var)\s+[\w$]+\s*(:[^=;]*)?=\s*(async\s+)?(function\b|\([^;]*?=>|[\w$]+\s*=>)",
    "php": r"function\b|(abstract\s+|final\s+)?class\b",
    "sh": r"function\s+[\w-]+|[\w-]+\s*\(\s*\)",
}
DEFINITIONS["ts"] = DEFINITIONS["js"] + r"|(export\s+)?(interface|type|enum)\b"
WRAPPER = re.compile(r"\b(class|namespace|struct)\s+[\w.]+[^{;()]*\{")


def _skip_literal(code: str, i: int, language: str) -> int:
    """If a comment or string literal starts at ``code[i]``, the index just after it; else ``i``."""
    for marker in LINE_COMMENTS.get(language, ("//",)):
        # In Bash a # starts a comment only at a word's start ($#, ${#x} are not comments).
        if code.startswith(marker, i) and (marker != "#" or i == 0 or code[i - 1] in " \t\n;"):
            end = code.find("\n", i)
            return len(code) if end < 0 else end
    if code.startswith("/*", i) and language != "sh":
        end = code.find("*/", i + 2)
        return len(code) if end < 0 else end + 2
    if language == "cs" and re.match(r'\$?@\$?"', code[i : i + 3]):  # verbatim: "" is a quote, \ is not
        j = code.index('"', i) + 1
        while j < len(code):
            if code[j] == '"':
                if code.startswith('""', j):
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(code)
    quote = code[i]
    if quote == "`" and language not in ("js", "ts", "sh"):
        return i
    if quote == "'" and language in ("cpp", "java", "cs") and i > 0 and code[i - 1].isalnum():
        return i  # a C++14 digit separator (1'000), not a character literal
    if quote in "\"'`":
        j = i + 1
        while j < len(code) and code[j] != quote:
            j += 2 if code[j] == "\\" and not (language == "sh" and quote == "'") else 1
        return min(j + 1, len(code))
    return i


def masked(code: str, language: str) -> str:
    """``code`` with every comment and string literal replaced by spaces (newlines kept), so that
    positions stay the same and what is left is only code.

    >>> masked('f("}") // {', "cpp")
    'f(   )     '
    """
    out, i = [], 0
    while i < len(code):
        after = _skip_literal(code, i, language)
        if after != i:
            out.append("".join("\n" if c == "\n" else " " for c in code[i:after]))
            i = after
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


def _closing(text: str, open_at: int, pair: str = "{}") -> int | None:
    """The index of the bracket closing the one at ``open_at`` in masked ``text``; None if cut off."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == pair[0]:
            depth += 1
        elif text[i] == pair[1]:
            depth -= 1
            if depth == 0:
                return i
    return None


def matching_brace(code: str, open_at: int, language: str) -> int | None:
    """The index of the ``}`` that closes the ``{`` at ``open_at``, past comments and strings."""
    return _closing(masked(code, language), open_at)


@dataclass(frozen=True)
class Definition:
    """Where an answer defines the function: its first line, its body's braces (``close_brace``
    None when the answer is cut off inside the body)."""

    line_start: int
    open_brace: int
    close_brace: int | None


# A top-level arrow function bound to a name (``const add = (x, y) =>``, ``let f = async x =>``,
# with TypeScript's types); what follows the arrow is its body.
ARROW_HEAD = re.compile(
    r"(?m)^[ \t]*(?:export\s+)?(?:const|let|var)\s+[\w$]+\s*(?::[^=;]*)?=\s*(?:async\s+)?"
    r"(?P<params>\([^;]*?\)|[\w$]+)\s*(?::[^=;{]*?)?=>[ \t]*"
)
# Where an expression goes on past a line's end: the next line starts with one of these, or the line
# ends with one.
CONTINUES_NEXT = tuple(".?:+-*/%&|,=<>")
CONTINUES_LINE = tuple("=+-*/%&|,(?:<>[{")
NON_SPACE = re.compile(r"\S")


def braced_arrows(code: str, language: str) -> str:
    r"""``code`` with each top-level arrow function whose body is an expression given a block body
    (``const add = (x, y) => x + y;`` becomes ``const add = (x, y) => { return x + y; };``) and a
    lone parameter its parentheses (``l =>`` becomes ``(l) =>``), so that it is found and assembled
    as every other definition; JavaScript and TypeScript only.

    >>> print(braced_arrows("const add = (x, y) =>\n  x +\n  y\nconst one = () => { return 1; };", "js"))
    const add = (x, y) =>
      { return x +
      y; }
    const one = () => { return 1; };
    """
    if language not in ("js", "ts"):
        return code
    text = masked(code, language)
    for head in reversed(list(ARROW_HEAD.finditer(text))):
        code = _expression_braced(code, text, head.end())
        if not head.group("params").startswith("("):
            params = slice(head.start("params"), head.end("params"))
            code = code[: params.start] + "(" + code[params] + ")" + code[params.stop :]
    return code


def _expression_braced(code: str, text: str, start: int) -> str:
    """``code`` with the arrow body that starts at ``start`` (masked: ``text``) in a block, when it
    is an expression that ends (at a ``;``, or a line's end where nothing carries it on)."""
    while start < len(text) and text[start] in " \t\n":
        start += 1
    if start >= len(text) or text[start] in "{;":
        return code  # a block body already (or nothing)
    end, depth, i, last = None, 0, start, ""  # last: the expression's last non-space character
    while i < len(text):
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and char == ";":
            end = i
            break
        elif depth == 0 and char == "\n":
            following = NON_SPACE.search(text, i + 1)
            after = following.group() if following else ""
            if last not in CONTINUES_LINE and after not in CONTINUES_NEXT:
                end = i
                break
        if not char.isspace():
            last = char
        i += 1
    if end is None:
        end = i if depth <= 0 else None
    if end is None:
        return code  # cut off inside the expression: left as it is
    expression = code[start:end].rstrip()
    return code[:start] + "{ return " + expression + "; }" + code[start + len(expression) :]


def _body_brace(text: str, after_params: int) -> int | None:
    """The ``{`` that opens a body after a parameter list ending at ``after_params``, or None when
    what follows is not a definition (a call: ``;``, ``)``, an operator). An object type in a
    TypeScript return type (``: {[key: string]: number} {``) follows ``:``, ``|``, ``&``, ``<`` or
    ``,`` and is skipped; the body follows the end of a type, a word or ``=>``."""
    i = after_params
    while i < len(text) and i - after_params < 400:
        char = text[i]
        if char == "{":
            previous = text[after_params:i].rstrip()[-1:]
            if previous in (":", "|", "&", "<", ","):
                end = _closing(text, i)
                if end is None:
                    return None
                i = end + 1
                continue
            return i
        if char in ";)}+*/%!?" or (char == "=" and not text.startswith("=>", i)):
            return None
        i += 1
    return None


def find_definition(code: str, name: str, language: str) -> Definition | None:
    """The first definition of ``name`` in ``code`` (see :class:`Definition`), or None."""
    text = masked(code, language)
    word = re.escape(name)
    patterns = [rf"\b{word}\s*\("]
    if language == "sh":
        patterns = [rf"\bfunction\s+{word}\b(\s*\(\s*\))?", rf"\b{word}\s*\(\s*\)"]
    if language in ("js", "ts"):
        patterns.append(
            rf"\b(?:const|let|var)\s+{word}\s*(?::[^=;]*)?=\s*(?:async\s+)?(?:function\b[^(]*)?\("
        )
    starts = sorted((m.start(), m.end()) for p in patterns for m in re.finditer(p, text))
    for start, end in starts:
        params_end = end
        if text[end - 1] == "(":
            closed = _closing(text, end - 1, "()")
            if closed is None:
                continue
            params_end = closed + 1
        brace = _body_brace(text, params_end)
        if brace is not None:
            line_start = text.rfind("\n", 0, start) + 1
            return Definition(line_start, brace, _closing(text, brace))
    return None


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + "".join("\n" if c == "\n" else " " for c in text[start:end]) + text[end:]


def _without_wrappers(code: str, language: str, inside: int) -> str:
    """``code`` with the headers and closing braces of every class or namespace around position
    ``inside`` blanked (the answer's own wrapper of the function: the prompt has its own)."""
    text = masked(code, language)
    for found in reversed(list(WRAPPER.finditer(text))):
        close = _closing(text, found.end() - 1)
        if found.start() < inside and (close is None or close > inside):
            line_start = text.rfind("\n", 0, found.start()) + 1
            code = _blank(code, line_start, found.end())
            if close is not None:
                code = _blank(code, close, close + 1)
    return code


def _without_entry_point(code: str, language: str) -> str:
    """``code`` without the answer's own ``main`` (the tests bring theirs)."""
    name = ENTRY_POINTS.get(language)
    while name:
        found = find_definition(code, name, language)
        if found is None:
            return code
        end = len(code) if found.close_brace is None else found.close_brace + 1
        code = _blank(code, found.line_start, end)
    return code


def _definitions_only(code: str, language: str) -> str:
    """The function, class and type definitions at the top level of ``code``, in order; the
    statements between them are left out (see ``DEFINITIONS``)."""
    if language not in DEFINITIONS:
        return code
    text, kept, depth_end = masked(code, language), [], 0
    for found in re.finditer(rf"(?m)^[ \t]*({DEFINITIONS[language]})", text):
        if found.start() < depth_end:
            continue  # inside the previous definition
        brace = text.find("{", found.end())
        close = _closing(text, brace) if brace >= 0 else None
        if close is None:
            break
        end = close + 1
        if text[end : end + 1] == ";":
            end += 1
        kept.append(code[found.start() : end])
        depth_end = end
    return "\n".join(kept)


def _import_key(line: str) -> str:
    return re.sub(r"\s+", "", line)


def _lines(code: str, language: str, imports: list[str]) -> str:
    """``code`` less its import lines (collected into ``imports``) and lines that never belong."""
    kept = []
    importing = re.compile(rf"\s*({IMPORT_LINES[language]})\s*") if language in IMPORT_LINES else None
    dropping = re.compile(rf"\s*({DROP_LINES[language]})\s*") if language in DROP_LINES else None
    for line in code.splitlines():
        if importing and importing.fullmatch(line):
            imports.append(line.strip())
        elif not (dropping and dropping.fullmatch(line)):
            kept.append(line)
    return "\n".join(line.rstrip() for line in kept).strip("\n")


def assemble(prompt: str, tests: str, code: str, found: Definition, language: str) -> str:
    """The program for an answer whose ``code`` defines the prompt's function at ``found``."""
    head, _, signature = prompt.rstrip().rpartition("\n")
    end = len(code) if found.close_brace is None else found.close_brace
    unwrapped = _without_entry_point(_without_wrappers(code, language, found.open_brace), language)
    imports: list[str] = []
    before = _lines(unwrapped[: found.line_start], language, imports)
    after = ""
    if found.close_brace is not None:
        after = _definitions_only(_lines(unwrapped[end + 1 :], language, imports), language)
    # Stray closing braces left where the answer's wrapper was cut off are blanked too.
    before, after = (_unmatched_closers(part, language) for part in (before, after))
    if language == "java":  # the helpers land inside the prompt's class
        before, after = _static_nested(before), _static_nested(after)
    body = code[found.open_brace + 1 : end].lstrip(" \t").removeprefix("\n").rstrip()
    prompt_lines = {_import_key(line) for line in prompt.splitlines()}
    hoisted = [line + "\n" for line in dict.fromkeys(imports) if _import_key(line) not in prompt_lines]
    function = "\n".join(part for part in (head, before, signature.rstrip()) if part) + "\n" + body + "\n"
    first = tests.find("}")
    if tests.lstrip().startswith("}"):  # MultiPL-E's tests open with the function's closing brace
        closer, rest = tests[: first + 1] + "\n", tests[first + 1 :].removeprefix("\n")
    else:
        closer, rest = "}\n", "\n" + tests
    return "".join(hoisted) + function + closer + (after + "\n" if after else "") + rest


# A Java type declaration: its modifiers, then what it is.
JAVA_TYPE = re.compile(
    r"((?:(?:public|protected|private|static|final|abstract|sealed|strictfp)\s+)*)(class|interface|enum|record)\b"
)


def _static_nested(code: str) -> str:
    r"""Java helpers with every type they declare at their top level made ``static``: placed inside
    the prompt's class, a class the answer wrote beside it would otherwise be an inner class, which
    the static function and the tests' ``main`` cannot make without an instance of the prompt's.

    >>> _static_nested("class Pair { class Inner {} }\npublic final class Zero {}\nstatic final class S {}")
    'static class Pair { class Inner {} }\npublic final static class Zero {}\nstatic final class S {}'
    """
    text, depth, starts, last = masked(code, "java"), 0, [], ""  # last: the last non-space character
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and last in ("", ";", "{", "}", ")") and not char.isspace():  # a statement starts
            found = JAVA_TYPE.match(text, i)
            if found and "static" not in found.group(1).split():
                starts.append(found.start(2))
        if not char.isspace():
            last = char
    for at in reversed(starts):
        code = code[:at] + "static " + code[at:]
    return code


def _unmatched_closers(code: str, language: str) -> str:
    text, depth = masked(code, language), 0
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                code = code[:i] + " " + code[i + 1 :]
            else:
                depth -= 1
    return "\n".join(line.rstrip() for line in code.splitlines()).strip("\n")
