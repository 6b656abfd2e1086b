r"""MultiPL-E (Cassano et al. 2023): HumanEval translated into other languages, graded by running each
program under its language's toolchain in the sandbox (:mod:`harness.sandbox.toolchains`).

The DFT paper's Table 3 reports seven of them beside Python: C++, Java, PHP, TypeScript, C#, Bash and
JavaScript, registered here as ``multipl-e-cpp``, ``-java``, ``-php``, ``-ts``, ``-cs``, ``-sh`` and
``-js`` (Python is ``humaneval``). Each is one ``test`` split read from its local copy under
``$HARNESS_DATA`` (``multipl-e-cpp.jsonl`` ...) or from the hub (``nuprl/MultiPL-E``, configuration
``humaneval-<language>``, split ``test``; 158 to 161 problems each). A row is MultiPL-E's:
``name``, ``language``, ``prompt`` (the function's signature and its docstring as comments, after
the language's imports), ``tests`` (the test suite that follows the function; in C++, Java, C# and
Bash it opens with the function's closing brace) and ``stop_tokens``. The dataset has no reference
solutions; a local copy may add one as ``solution`` (a whole answer, used as the training completion
and by the harness's own checks).

The prompt is the chat form that code models' evaluations use for MultiPL-E (DeepSeek-Coder's,
which Qwen2.5-Coder's follows): complete the given function, answer with the whole function in a
code block. The program is the prompt's lines before the signature, the helpers the answer defines
before the function (without imports, includes and class headers the prompt already has), the
prompt's signature, the answer's function body, and the tests. An answer without the function is
read as MultiPL-E reads a base model's: a continuation of the prompt, cut at the first stop token.

A program passes when its build succeeds and its run ends through the test suite's own end: the
harness appends an exit path that prints a fresh random line after the last test (C++: the tests'
``main`` is renamed and called from ours; Java and C#: a class of ours calls ``Problem.main``, and in
C# a failed ``Debug.Assert`` exits 1, where Mono's default carries on and exits 0), and the verdict
needs that line and exit status 0. So an early ``exit(0)``, ``System.exit(0)``, ``process.exit(0)``
or ``exit 0`` fails. What it does not cover: the tests run in the program's own process, as
MultiPL-E runs them, so a program that reads its own source for the line, or replaces the
language's ``assert``, can fake a pass; Python's HumanEval checks run outside the program instead.

A language whose toolchain this machine lacks is one line naming the packages, before anything is
generated.

>>> task = MultiPLE.for_language("sh")
>>> task.name, task.title
('multipl-e-sh', 'Bash')
>>> prompt = '#!/bin/bash\n# Add two numbers\nadd() {\n'
>>> print(task.program({"prompt": prompt, "tests": '}\n\nadd 1 2\n', "stop_tokens": ["\n}"]},
...     "```bash\nadd() {\n    echo $(( $1 + $2 ))\n}\n```"))
#!/bin/bash
# Add two numbers
add() {
    echo $(( $1 + $2 ))
}
<BLANKLINE>
add 1 2
<BLANKLINE>
"""

from __future__ import annotations

import os
import re
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from harness.sandbox.process import Execution, Limits
from harness.sandbox.toolchains import BUILD_FAILED, TOOLCHAINS, run_in_language
from tasks.base import Split
from tasks.code_grading import CodeTask
from tasks.multipl_e_program import assemble, braced_arrows, find_definition
from tasks.sources import Source, field, load_rows

HUB_ID = "nuprl/MultiPL-E"
INSTRUCTION = (
    "Please continue to complete the function. You are not allowed to modify the given code and do "
    "the completion only. Please return all completed function in a codeblock. Here is the given "
    "code to do completion:"
)
# The fence tags a model may give each language's code block (a bare fence is accepted too).
FENCE_TAGS = {
    "cpp": ("cpp", "c++", "cc", "cxx"),
    "java": ("java",),
    "js": ("javascript", "js", "node"),
    "ts": ("typescript", "ts"),
    "php": ("php",),
    "sh": ("bash", "sh", "shell"),
    "cs": ("csharp", "cs", "c#"),
}
FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
FIELDS = ("name", "prompt", "tests")


def function_name(signature: str, language: str) -> str | None:
    """The name of the function whose signature line the prompt ends with."""
    found = re.search(r"([A-Za-z_$][\w$]*)\s*\(", signature)
    return found.group(1) if found else None


def code_of(completion: str, language: str, name: str | None) -> str:
    """The answer's code: the fenced block in this language (or a bare fence) that defines ``name``,
    else the longest such block; the whole completion when it has no fence."""
    tags = FENCE_TAGS[language]
    fenced = FENCE.findall(completion)
    blocks = [
        braced_arrows(body, language) for tag, body in fenced if tag.lower() in ("", *tags) and body.strip()
    ]
    if not blocks:
        return "" if fenced else braced_arrows(completion, language)  # fences, none in this language: no code
    defining = [block for block in blocks if name and find_definition(block, name, language)]
    return (defining or sorted(blocks, key=len, reverse=True))[0]


def cut_at_stop(text: str, stop_tokens: list[str]) -> str:
    """``text`` up to the first of MultiPL-E's stop tokens, as its evaluation cuts a completion."""
    ends = [text.find(stop) for stop in stop_tokens if stop and text.find(stop) >= 0]
    return text[: min(ends)] if ends else text


class MultiPLE(CodeTask):
    """One language of MultiPL-E's HumanEval; see the module docstring."""

    domain = "code"
    max_new_tokens = 512
    timeout_s = 15.0  # build and run together; MultiPL-E allows 15 s per step
    language: ClassVar[str]
    splits = (Split("test", "test", "HumanEval's problems translated by MultiPL-E"),)

    @staticmethod
    def for_language(language: str) -> MultiPLE:
        return LANGUAGE_TASKS[language]()

    @property
    def toolchain(self):
        return TOOLCHAINS[self.language]

    def lacking(self) -> str | None:
        try:
            self.toolchain.require()
        except ValueError as error:
            return str(error)
        return None

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.split(split)
        self.toolchain.require()  # a missing toolchain is said before anything is generated
        rows, where = load_rows(self.name, Source(HUB_ID, f"humaneval-{self.language}", "test"))
        examples = []
        for number, row in enumerate(rows[:limit], start=1):
            name, prompt, tests = (field(row, (key,), self.name, where, number) for key in FIELDS)
            for key, text in (("prompt", prompt), ("tests", tests)):
                if not isinstance(text, str) or not text.strip():
                    raise ValueError(f"{where} row {number}: {key} must be non-empty text")
            language = row.get("language")
            if language not in (None, "", self.language):
                raise ValueError(f"{where} row {number}: language {language!r}, expected {self.language!r}")
            if function_name(prompt.rstrip().splitlines()[-1], self.language) is None:
                raise ValueError(f"{where} row {number}: the prompt does not end with a function signature")
            stops = row.get("stop_tokens") or []
            if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
                raise ValueError(f"{where} row {number}: stop_tokens must be a list of strings")
            examples.append(
                {
                    "id": str(name),
                    "prompt": prompt,
                    "tests": tests,
                    "stop_tokens": list(stops),
                    "solution": str(row.get("solution") or ""),
                }
            )
        return examples

    def messages(self, example: dict[str, Any]) -> dict[str, Any]:
        tag = FENCE_TAGS[self.language][0]
        question = f"{INSTRUCTION}\n```{tag}\n{example['prompt'].strip()}\n```"
        return {
            "prompt": [{"role": "user", "content": question}],
            "completion": [{"role": "assistant", "content": example.get("solution", "")}],
        }

    def extract(self, completion: str) -> str:
        return code_of(completion, self.language, None)

    def program(self, example: dict[str, Any], completion: str) -> str | None:
        """The program for ``completion``: see :mod:`tasks.multipl_e_program`. None without code."""
        prompt, tests = example["prompt"], example["tests"]
        name = function_name(prompt.rstrip().rpartition("\n")[2], self.language)
        code = code_of(completion, self.language, name)
        if not code.strip():
            return None
        found = find_definition(code, name, self.language) if name else None
        if found is None:  # a continuation of the prompt, as MultiPL-E reads a base model's
            return prompt + cut_at_stop(code, example["stop_tokens"]) + "\n" + tests
        return assemble(prompt, tests, code, found, self.language)

    def grade(self, pairs: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
        programs = [self.program(example, completion) for example, completion in pairs]
        limits = [self.limits(example) for example, _ in pairs]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            verdicts = list(pool.map(self.check, programs, limits))
        return [
            {"score": float(verdict == "passed"), "verdict": verdict, "stderr": detail, "program": program}
            for program, (verdict, detail) in zip(programs, verdicts)
        ]

    def check(self, program: str | None, limits: Limits) -> tuple[str, str]:
        """``(verdict, detail)`` for one program: passed only through the tests' own end."""
        if program is None:
            return "failed", "no code in the completion"
        nonce = secrets.token_hex(16)
        source, main = with_exit_path(self.language, program, nonce)
        ran = run_in_language(self.language, source, limits, main=main)
        return verdict_of(ran, nonce)


def with_exit_path(language: str, program: str, nonce: str) -> tuple[str, str]:
    """``(program, entry class)``: the program with the harness's exit path after its tests."""
    if language == "cpp":
        mains = list(re.finditer(r"\bint\s+main\s*\(\s*\)", program))
        if mains:  # the tests' main (the last one): ours calls it, then says the tests ended
            last = mains[-1]
            program = program[: last.start()] + "int harness_tests()" + program[last.end() :]
            end = program.rfind("}")
            if end > last.start():  # its end returns a value, as a function that is not main must
                program = program[:end] + "return 0;\n" + program[end:]
            program += (
                "\nint main() { harness_tests(); std::fflush(stdout); "
                f'std::puts("\\n{nonce}"); return 0; }}\n'
            )
        return program, ""
    if language in ("java", "cs"):
        found = re.search(r"\bclass\s+(\w+)", program)
        problem = found.group(1) if found else "Problem"
        if language == "java":
            exit_path = (f"\nclass HarnessExit {{ public static void main(String[] args) throws Exception {{ "
                         f'{problem}.main(args); System.out.println("\\n{nonce}"); }} }}\n')  # fmt: skip
        else:
            exit_path = (
                "\nclass HarnessExit { public static void Main(string[] args) { "
                "System.Diagnostics.Trace.Listeners.Clear(); "
                "System.Diagnostics.Trace.Listeners.Add(new HarnessFail()); "
                f'{problem}.Main(args); System.Console.WriteLine("\\n{nonce}"); }} }}\n'
                "class HarnessFail : System.Diagnostics.TraceListener { "
                "public override void Write(string m) {} public override void WriteLine(string m) {} "
                "public override void Fail(string m) { "
                'System.Console.Error.WriteLine("Assertion failed: " + m); System.Environment.Exit(1); } '
                "public override void Fail(string m, string d) { Fail(m); } }\n"
            )
        return program + exit_path, "HarnessExit"
    line = {  # on a line of its own, whatever the program printed last
        "js": f'\nconsole.log("\\n{nonce}");\n',
        "ts": f'\nconsole.log("\\n{nonce}");\n',
        "php": f'\necho "\\n{nonce}\\n";\n',
        "sh": f'\necho; echo "{nonce}"\n',
    }[language]
    return program + line, ""


def verdict_of(ran: Execution, nonce: str) -> tuple[str, str]:
    """The verdict of one run (see :mod:`harness.sandbox.check` for the names) and why."""
    said = ran.stderr[-1500:].strip()
    if BUILD_FAILED in ran.notes:
        return "failed", f"did not build: {said}"
    if ran.status == "timeout":
        return "timeout", "over the time limit"
    if ran.status in ("memory", "output"):
        return ("memory" if ran.status == "memory" else "failed"), f"{ran.status} limit: {said}"
    if "process-limit" in ran.notes:
        return "crashed", "over the process limit"
    lines = ran.stdout.rstrip("\n").rsplit("\n", 1)
    if ran.status == "ok" and lines[-1] == nonce:
        return "passed", ""
    if ran.status == "ok":
        return "failed", "exited before the tests ended"
    code = ran.returncode or 0
    if code > 128 and code - 128 in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGKILL):
        return "crashed", f"killed by signal {code - 128}: {said}"
    return "failed", f"exit {code}: {said}"


def _language_task(language: str) -> type[MultiPLE]:
    chain = TOOLCHAINS[language]
    attributes = {"name": f"multipl-e-{language}", "title": chain.title, "language": language}
    return type(f"MultiPLE_{language}", (MultiPLE,), attributes)


# The paper's Table 3 order.
LANGUAGE_TASKS: dict[str, type[MultiPLE]] = {
    language: _language_task(language) for language in ("cpp", "java", "php", "ts", "cs", "sh", "js")
}
