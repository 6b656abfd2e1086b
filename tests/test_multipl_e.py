"""MultiPL-E: programs assembled from chat answers, run under each language's real toolchain.

The rows under tests/data/multipl-e/ are in MultiPL-E's own format (prompt, tests that open with
the function's closing brace where MultiPL-E's do, stop tokens) with a right answer (``solution``)
and a wrong one (``wrong``) each, written as a chat model answers: a fenced block holding the whole
function, helpers, imports, a class wrapper or a ``main`` of its own, and braces inside strings and
comments. A language whose toolchain this machine lacks is skipped with the package to install;
``nox -s test-multipl-e`` installs them all and sets HARNESS_REQUIRE_TOOLCHAINS=1, which turns those
skips into failures.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import tasks
from harness.config import ConfigError
from harness.resolve import check_task
from harness.sandbox import toolchains
from harness.sandbox.process import Limits
from tasks.multipl_e import LANGUAGE_TASKS, MultiPLE, cut_at_stop, with_exit_path
from tasks.multipl_e_program import braced_arrows, matching_brace

DATA = Path(__file__).parent / "data" / "multipl-e"
LANGUAGES = list(LANGUAGE_TASKS)
REQUIRE = os.environ.get("HARNESS_REQUIRE_TOOLCHAINS") == "1"
# A program that ends with status 0 before its tests do, in each language: it must fail.
EARLY_EXIT = {
    "cpp": "```cpp\nlong add(long x, long y) {\n    std::exit(0);\n}\n```",
    "java": "```java\npublic static long add(long x, long y) {\n    System.exit(0);\n    return 0;\n}\n```",
    "js": "```js\nfunction add(x, y) {\n  process.exit(0);\n}\n```",
    "ts": "```ts\nfunction add(x: number, y: number): number {\n  (globalThis as any).process.exit(0);\n  return 0;\n}\n```",
    "php": "```php\nfunction add($x, $y) {\n    exit(0);\n}\n```",
    "sh": "```bash\nexit 0\nadd() {\n    echo 1\n}\n```",
    "cs": "```cs\npublic static long Add(long x, long y) {\n    System.Environment.Exit(0);\n    return 0;\n}\n```",
}

# Right answers as chat models write them, each passing only if the assembly gets its shape right:
# (problem index in the fixture file, answer).
SHAPES = {
    "cpp": [
        (1, "```cpp\n#include<assert.h>\n#include<bits/stdc++.h>\n#include <numeric>\nstatic bool keep(long x);\n"
            "int main() { std::cout << \"demo\"; }\n// Return only positive numbers in the list.\n"
            "// >>> get_positive((std::vector<long>({(long)-1, (long)2, (long)-4, (long)5, (long)6})))\n"
            "// (std::vector<long>({(long)2, (long)5, (long)6}))\nstd::vector<long> get_positive(std::vector<long> l) {\n"
            "    std::vector<long> kept;\n    std::copy_if(l.begin(), l.end(), std::back_inserter(kept), keep);\n"
            "    std::cout << \"no newline\";\n    return kept;\n}\nstatic bool keep(long x) { return x > 0 && 1'000 > 0; }\n```"),
    ],
    "java": [
        (0, "```java\nimport java.util.function.BinaryOperator;\npublic class Solution {\n"
            "    public static void main(String[] args) { System.out.println(add(2, 3)); }\n"
            "    public static long add(long x, long y) {\n        BinaryOperator<Long> plus = Long::sum;\n"
            "        return plus.apply(x, y) + zero();\n    }\n    private static long zero() { return 0L; }\n}\n```"),
        # helper classes of its own, before and after the one with the function (nested in the
        # prompt's class, they must not need an instance of it)
        (0, "```java\nclass Pair {\n    final long a, b;\n    Pair(long a, long b) { this.a = a; this.b = b; }\n"
            "    long sum() { return a + b; }\n}\npublic class Problem {\n    public static long add(long x, long y) {\n"
            "        return new Pair(x, y).sum() + Zero.ZERO;\n    }\n}\nfinal class Zero { static final long ZERO = 0L; }\n```"),
        (1, "```java\nimport static java.lang.Math.*;\nclass Problem {\n"
            "    public static ArrayList<Long> getPositive(ArrayList<Long> l) {\n        ArrayList<Long> kept = new ArrayList<>();\n"
            "        for (long x : l) if (signum(x) > 0) kept.add(x);\n        return kept;\n    }\n}\n```"),
    ],
    "js": [
        (0, "```javascript\nconst add = (x, y) => {\n  return x + y;\n};\n```"),
        # expression-bodied arrows, the function's over two lines, a helper's before and after it
        (0, "```javascript\nconst plus = (a, b) => a + b;\nconst add = (x, y) =>\n  plus(x,\n    y)\n"
            "const unused = z => z * 2;\nconsole.log(add(2, 3));\n```"),
        (1, "```js\nconst get_positive = l => l.filter(x => x > 0)\n```"),
        (1, '```js\n// >>> get_positive([-1, 2, -4, 5, 6]) gives {"kept": [2, 5, 6]}\nfunction get_positive(l) {\n'
            '  process.stdout.write("no newline");\n  return l.filter(isPositive);\n}\nfunction isPositive(x) { return x > 0; }\n'
            'console.log(get_positive().length);  // an example call that would throw before the tests\n```'),
    ],
    "ts": [(1, "```typescript\nconst get_positive = (l: number[]): number[] => {\n  return l.filter(pos);\n};\n"
               "function pos(x: number): boolean { return x > 0; }\n```"),
           (1, "```typescript\nconst get_positive = (l: number[]): number[] => l.filter((x) => x > 0);\n```")],
    "php": [(1, "```php\n<?php\nfunction get_positive($l) {\n    return array_values(array_filter($l, 'is_positive'));\n}\n"
                "function is_positive($x) { return $x > 0; }\n?>\n```")],
    "sh": [
        (0, "```bash\nfunction add {\n    echo $(( $1 + $2 ))\n}\n```"),
        (1, '```bash\nget_positive() {\n    local kept=()\n    for x in $1; do positive "$x" && kept+=("$x"); done\n'
            '    echo "${kept[*]}"\n}\npositive() { (( $1 > 0 )); }\n```'),
    ],
    "cs": [(0, "```csharp\nusing System.Text.RegularExpressions;\nnamespace Demo {\n    class Solution {\n"
               "        public static long Add(long x, long y) {\n            string path = @\"C:\\dir\\\";\n"
               "            return x + y + Regex.Matches(path, \"q\").Count;\n        }\n"
               "        public static void Main(string[] args) { }\n    }\n}\n```")],
}  # fmt: skip


def rows(language: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"multipl-e-{language}.jsonl").read_text().splitlines()]


@pytest.fixture
def local_copies(monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(DATA))


def examples(language: str) -> list[dict]:
    """The task's examples without touching the toolchain (the assembly tests need none)."""
    return [
        {"id": r["name"], "prompt": r["prompt"], "tests": r["tests"], "stop_tokens": r["stop_tokens"]}
        for r in rows(language)
    ]


def needs_toolchain(language: str) -> None:
    lacking = LANGUAGE_TASKS[language]().lacking()
    if lacking and not REQUIRE:
        pytest.skip(lacking)


# ----- assembly, with no toolchain ---------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_chat_answer_becomes_prompt_head_helpers_signature_body_and_tests(language):
    task = LANGUAGE_TASKS[language]()
    for example, row in zip(examples(language), rows(language)):
        program = task.program(example, row["solution"])
        signature = example["prompt"].rstrip().rsplit("\n", 1)[-1]
        assert program.count(signature) == 1, program  # the prompt's signature, once
        head = example["prompt"].rstrip().rsplit("\n", 1)[0]
        hoisted = program[: program.index(head)]  # imports the prompt lacks, and nothing else
        assert all(line.startswith(("#include", "import", "using")) for line in hoisted.splitlines())
        assert program.endswith(example["tests"])
        # What the answer adds around its function and the prompt already has is left out.
        for extra in ("import java.util.*;\n\nclass", "<?php\nfunction",
                      "console.log(add(2, 3))", "cout << add", "public static void main(String[] args) {\n        System",
                      'Console.WriteLine(Add(2, 3))', '\nadd "$@"'):  # fmt: skip
            assert extra not in program


@pytest.mark.parametrize(
    ("code", "braced"),
    [
        ("const f = (a, b) => a + b;", "const f = (a, b) => { return a + b; };"),
        ("let f = x =>\n  g(x,\n    1)\nf(2)", "let f = (x) =>\n  { return g(x,\n    1); }\nf(2)"),
        ("const f = (s) => s.split(';')\n  .length", "const f = (s) => { return s.split(';')\n  .length; }"),
        (
            "export const f = async (a: number): Promise<number> => a",
            "export const f = async (a: number): Promise<number> => { return a; }",
        ),
        ("const f = (a) => {\n  return a;\n};", "const f = (a) => {\n  return a;\n};"),  # a block already
        ("const f = x => { return x; }", "const f = (x) => { return x; }"),
        ("const f = (a) => g(a,", "const f = (a) => g(a,"),  # cut off: left as it is
        ("    xs.map(x => x + 1);", "    xs.map(x => x + 1);"),  # not a definition
    ],
)
def test_an_arrow_with_an_expression_body_gets_a_block(code, braced):
    assert braced_arrows(code, "ts") == braced
    assert braced_arrows(code, "cpp") == code


def test_helpers_before_the_function_are_kept_and_headers_dropped():
    example = examples("java")[1]
    program = LANGUAGE_TASKS["java"]().program(example, rows("java")[1]["solution"])
    assert "private static boolean positive(long x)" in program
    assert program.count("class Problem {") == 1
    cpp = LANGUAGE_TASKS["cpp"]().program(examples("cpp")[1], rows("cpp")[1]["solution"])
    assert "using namespace std;" in cpp and cpp.startswith("#include <vector>\n#include<assert.h>")
    assert "#include <bits/stdc++.h>" not in cpp  # the prompt has it (spelled without the space)


def test_an_answer_without_the_function_is_a_continuation_cut_at_the_stop_tokens():
    task = LANGUAGE_TASKS["cpp"]()
    example = examples("cpp")[0]
    program = task.program(example, "    return x + y;\n}\n\nint main() { return 1; }\n")
    assert program == example["prompt"] + "    return x + y;" + "\n" + example["tests"]
    assert cut_at_stop("a\n}\nb", ["\n}", "\nb"]) == "a"
    assert task.program(example, "  \n") is None and task.program(example, "```cpp\n```") is None


@pytest.mark.parametrize(
    ("code", "language", "closes_at"),
    [
        ("f() { s = \"}\"; c = '}'; // }\n /* } */ }", "cpp", -1),
        ("f() { echo '}' \"}\" # }\n n=${#x}; }", "sh", -1),
        ("f() { const t = `}${x}`; }", "js", -1),
        ("f() { $a = '}'; # }\n }", "php", -1),
        ("f() { if (x) { return 1;", "cpp", None),  # cut off: no closing brace
    ],
)
def test_the_closing_brace_skips_strings_and_comments(code, language, closes_at):
    found = matching_brace(code, code.index("{"), language)
    assert found == (len(code) + closes_at if closes_at is not None else None)


def test_a_typescript_object_return_type_is_not_the_body():
    prompt = "//Count letters.\nfunction histogram(test: string): {[key: string]: number} {\n"
    answer = "```ts\nfunction histogram(test: string): {[key: string]: number} {\n  const seen: {[key: string]: number} = {};\n  return seen;\n}\n```"
    task = LANGUAGE_TASKS["ts"]()
    program = task.program({"prompt": prompt, "tests": "test();", "stop_tokens": []}, answer)
    assert program == prompt + "  const seen: {[key: string]: number} = {};\n  return seen;\n}\n\ntest();"


def test_the_exit_path_wraps_the_tests_end():
    program, main = with_exit_path("cpp", "long f() {}\nint main() {\n    assert(f() == 0);\n}\n", "N0")
    assert "int harness_tests() {" in program and program.count("int main()") == 1 and main == ""
    assert "return 0;\n}\n\nint main() { harness_tests();" in program and 'std::puts("\\nN0")' in program
    java, main = with_exit_path("java", "class Problem {\n}\n", "N1")
    assert main == "HarnessExit" and 'Problem.main(args); System.out.println("\\nN1")' in java


# ----- the registry, bad rows, a missing toolchain -----------------------------------------------


def test_the_seven_languages_are_registered_in_the_papers_order():
    names = [name for name in tasks.TASKS if name.startswith("multipl-e-")]
    assert names == [f"multipl-e-{code}" for code in ("cpp", "java", "php", "ts", "cs", "sh", "js")]
    assert [tasks.get(name).title for name in names] == [
        "C++",
        "Java",
        "PHP",
        "TypeScript",
        "C#",
        "Bash",
        "JavaScript",
    ]


def test_a_missing_toolchain_is_one_line_naming_the_package_before_anything_runs(monkeypatch, local_copies):
    missing = toolchains.Tool("php", names=("php-that-is-not-here",), install="apt-get install php-cli")
    chain = toolchains.TOOLCHAINS["php"]
    monkeypatch.setitem(toolchains.TOOLCHAINS, "php", type(chain)(**{**chain.__dict__, "tools": (missing,)}))
    task = LANGUAGE_TASKS["php"]()
    expected = "PHP programs need php, which this machine lacks: apt-get install php-cli"
    assert task.lacking() == expected
    with pytest.raises(ValueError, match="^PHP programs need php") as raised:
        task.load("test")
    assert "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match=r"^--ood-tasks multipl-e-php: PHP programs need php"):
        check_task("multipl-e-php", "--ood-tasks")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"name": "p", "language": "js", "prompt": "// x\nfunction f(a){\n", "tests": "t"},
            "language 'js', expected 'sh'",
        ),
        (
            {"name": "p", "prompt": "# no function here\n", "tests": "t"},
            "does not end with a function signature",
        ),
        (
            {"name": "p", "prompt": "f() {\n", "tests": "t", "stop_tokens": "\n}"},
            "stop_tokens must be a list",
        ),
        ({"name": "p", "prompt": "f() {\n"}, "tests"),
        ({"name": "p", "prompt": " \n ", "tests": "t"}, "prompt must be non-empty text"),
        ({"name": "p", "prompt": "f() {\n", "tests": ["t"]}, "tests must be non-empty text"),
    ],
)
def test_a_bad_row_is_one_line_naming_the_file_and_row(tmp_path, monkeypatch, row, message):
    (tmp_path / "multipl-e-sh.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=message) as raised:
        LANGUAGE_TASKS["sh"]().load("test")
    assert "multipl-e-sh.jsonl" in str(raised.value) and "\n" not in str(raised.value)


# ----- real toolchains ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_right_answers_pass_and_wrong_and_early_exits_fail_under_the_real_toolchain(language, local_copies):
    needs_toolchain(language)
    task = LANGUAGE_TASKS[language]()
    loaded = task.load("test")
    assert [e["id"] for e in loaded] == [r["name"] for r in rows(language)]
    answers = [(e, r["solution"]) for e, r in zip(loaded, rows(language))]
    answers += [(e, r["wrong"]) for e, r in zip(loaded, rows(language))]
    answers.append((loaded[0], EARLY_EXIT[language]))
    shapes = [(loaded[index], answer) for index, answer in SHAPES[language]]
    graded = task.grade(shapes + answers)
    assert [g["verdict"] for g in graded[: len(shapes)]] == ["passed"] * len(shapes), graded[: len(shapes)]
    graded = graded[len(shapes) :]
    verdicts = [g["verdict"] for g in graded]
    right = len(loaded)
    assert verdicts[:right] == ["passed"] * right, [g["stderr"] for g in graded[:right]]
    assert verdicts[right:] == ["failed"] * (len(answers) - right), [g["stderr"] for g in graded]
    assert graded[-1]["stderr"] == "exited before the tests ended"
    # The training completion of a row is its solution: scoring it is the round trip.
    assert task.score(loaded[0], task.messages(loaded[0])["completion"][0]["content"]) == 1.0


class Quick(MultiPLE):
    """A task with a short wall-clock limit for the hostile programs."""

    timeout_s = 3.0


def _quick(language: str) -> MultiPLE:
    return type("QuickTask", (Quick, LANGUAGE_TASKS[language]), {})()


def test_a_hanging_program_a_fork_bomb_and_a_build_that_never_ends_are_contained(local_copies):
    needs_toolchain("sh")
    needs_toolchain("cpp")
    sh, cpp = _quick("sh"), _quick("cpp")
    add_sh, add_cpp = sh.load("test")[0], cpp.load("test")[0]
    started = time.monotonic()
    hang, bomb = sh.grade(
        [
            (add_sh, "```bash\nadd() {\n    while :; do :; done\n}\n```"),
            (add_sh, "```bash\nbomb() { bomb | bomb & }\nadd() {\n    bomb\n    sleep 60\n}\n```"),
        ]
    )
    # The preprocessor reads /dev/zero for ever: the build is what hangs.
    (build,) = cpp.grade([(add_cpp, '```cpp\nlong add(long x, long y) {\n#include "/dev/zero"\n}\n```')])
    assert hang["verdict"] == "timeout"
    assert bomb["verdict"] in ("crashed", "timeout", "failed"), bomb
    assert bomb["verdict"] != "passed" and build["verdict"] in ("timeout", "memory", "failed")
    assert time.monotonic() - started < 30
    # Nothing of theirs is left running.
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _command(p) == "cc1plus"]
    assert not left


def _command(process: Path) -> str:
    try:
        return (process / "comm").read_text().strip()
    except OSError:
        return ""


def test_limits_of_a_language_raise_the_tasks_floor_not_lower_it():
    needs_toolchain("sh")
    ran = toolchains.run_in_language("sh", "ulimit -v", Limits(timeout_s=10, memory_mb=8192))
    assert ran.stdout.strip() == str(8192 * 1024)
