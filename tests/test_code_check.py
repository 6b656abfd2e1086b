"""The code checker, one hostile behaviour per test: each program tries to pass without being right,
or to harm the machine; each gets a failing verdict, and the harness goes on."""

from __future__ import annotations

import socket
import textwrap
import uuid

import pytest

from harness.sandbox.check import CallTests, CheckFunction, check_many, check_one
from harness.sandbox.driver import decode, encode
from harness.sandbox.process import Limits
from tests.test_sandbox import needs_namespaces, processes_left, refused

QUICK = Limits(timeout_s=2, cpu_s=2)  # long enough for any program that ends; a hang costs 2 s
ADD = CallTests("add", [([1, 2], 3), ([20, 22], 42), ([-5, 5], 0)])


def verdict(source: str, tests=ADD, limits: Limits = QUICK):
    return check_one(textwrap.dedent(source).strip() + "\n", tests, limits)


def test_a_right_program_passes_and_a_wrong_one_fails_with_the_first_bad_call():
    assert verdict("def add(a, b):\n    return a + b").verdict == "passed"
    wrong = verdict("def add(a, b):\n    return a * b")
    assert wrong.verdict == "failed" and wrong.detail == "AssertionError: add(1, 2) returned 2, expected 3"


def test_a_program_without_site_hooks_still_has_the_environment_and_exit():
    # The driver starts with ``python -S`` (no .pth hooks) and restores site's other gifts itself.
    uses_site = """
    import numpy, sys

    def add(a, b):
        if not callable(exit) or not callable(quit) or not sys.flags.no_site:
            return None
        return int(numpy.add(a, b))
    """
    assert verdict(uses_site).verdict == "passed"
    quits = verdict("def add(a, b):\n    exit(3)")
    assert quits.verdict == "failed" and quits.detail == "CandidateRaised: SystemExit: 3"


def test_right_value_of_the_wrong_type_fails():
    assert verdict("def add(a, b):\n    return float(a + b)").verdict == "failed"


@pytest.mark.parametrize(
    "source",
    [
        "import sys\nsys.exit(0)",  # before the tests: the program never loads
        "import os\nos._exit(0)",
        "import os\ndef add(a, b):\n    os._exit(0)",  # during the first test
        "def add(a, b):\n    raise SystemExit(0)",
        "import os\nos.closerange(0, 64)\ndef add(a, b):\n    return 0",  # cuts the channel
    ],
    ids=["sys-exit-at-load", "os-exit-at-load", "os-exit-in-call", "system-exit-in-call", "close-channel"],
)
def test_exiting_early_with_status_zero_is_a_failure(source):
    ran = verdict(source)
    assert ran.verdict == "failed" and ran.detail


def test_an_object_whose_eq_is_always_true_cannot_cross():
    source = """
        class Anything:
            def __eq__(self, other):
                return True
        def add(a, b):
            return Anything()
    """
    ran = verdict(source)
    assert ran.verdict == "failed" and "not plain data" in ran.detail


def test_an_int_subclass_with_a_forged_eq_crosses_as_its_plain_value():
    source = """
        class Liar(int):
            def __eq__(self, other):
                return True
        def add(a, b):
            return Liar(7)
    """
    assert verdict(source).verdict == "failed"


def test_patching_builtins_and_the_driver_does_not_change_the_verdict():
    source = """
        import builtins, json, sys
        builtins.AssertionError = type("Never", (Exception,), {})
        builtins.isinstance = lambda *a: True
        builtins.type = lambda *a: int
        json.loads = lambda *a, **k: {"call": "add", "args": []}
        sys.modules["harness"] = None
        def add(a, b):
            return 0
    """
    assert verdict(source).verdict == "failed"


def test_printing_a_fake_answer_does_not_reach_the_checker():
    source = """
        import sys
        print('{"loaded": true}')
        def add(a, b):
            print('{"value": %d}' % (a + b))
            sys.stdout.flush()
            return None
    """
    ran = verdict(source)
    assert ran.verdict == "failed" and '{"value": 3}' in ran.stderr  # it went to stderr, not the pipe


@pytest.mark.slow
def test_the_hidden_tests_are_nowhere_the_program_can_read():
    # The expected value is made now, so no file holds it unless the harness wrote it somewhere; the
    # program reports every value of that shape it can find on disk, in /proc and in its pipes.
    sentinel = f"expected-value-{uuid.uuid4().hex}"
    source = """
        import os, re, sys, time
        shape = re.compile(rb"expected-value-[0-9a-f]{32}")
        found = set()
        # A deadline, so a machine whose /tmp holds gigabytes (a dev box) still gets an answer.
        deadline = time.monotonic() + 15
        for top in (".", "/tmp", "/dev/shm", "/var/tmp"):
            for folder, subfolders, names in os.walk(top):
                if time.monotonic() > deadline:
                    break
                # Installed environments and repositories (a checkout under /tmp brings its .nox):
                # nothing the harness writes while grading goes there.
                subfolders[:] = [d for d in subfolders if d not in (".nox", ".git", "site-packages", "node_modules")]
                for name in names:
                    try:  # the first MiB of each: /tmp may hold the harness's model files
                        found.update(shape.findall(open(os.path.join(folder, name), "rb").read(1 << 20)))
                    except OSError:
                        pass
        for pid in filter(str.isdigit, os.listdir("/proc")):
            for part in ("cmdline", "environ"):
                try:
                    found.update(shape.findall(open(f"/proc/{pid}/{part}", "rb").read()))
                except OSError:
                    pass
        print("found", sorted(found), file=sys.stderr)
        def answer(x):
            return None
    """
    ran = verdict(source, CallTests("answer", [([1], sentinel)]), limits=Limits(timeout_s=30, cpu_s=30))
    assert ran.verdict == "failed" and "found" in ran.stderr
    assert sentinel not in ran.stderr


def test_later_calls_are_not_in_any_pipe_the_program_can_read():
    # During the first call, the program drains every descriptor it has: the second call's
    # arguments are not sent until the first answer is back, so they are nowhere to be read.
    source = """
        import os, sys
        calls = []
        def f(x):
            calls.append(x)
            if len(calls) == 1:
                for fd in range(0, 32):
                    try:
                        os.set_blocking(fd, False)
                        print("read", fd, os.read(fd, 1 << 16), file=sys.stderr)
                    except OSError:
                        pass
            return x
    """
    ran = verdict(source, CallTests("f", [(["first-call"], "first-call"), (["second-call-7d2"], "x")]))
    assert ran.verdict == "failed" and "second-call-7d2" not in ran.stderr


@pytest.mark.slow
def test_infinite_loop_times_out():
    ran = verdict("def add(a, b):\n    while True:\n        pass")
    assert ran.verdict == "timeout" and ran.seconds < QUICK.timeout_s + 5


@pytest.mark.slow
def test_sigterm_handler_does_not_save_a_looping_program():
    source = """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        def add(a, b):
            while True:
                pass
    """
    assert verdict(source).verdict == "timeout"


@pytest.mark.slow
def test_memory_bomb_is_a_memory_verdict():
    source = """
        def add(a, b):
            blocks = []
            while True:
                blocks.append(bytearray(2**26))
    """
    assert verdict(source, limits=Limits(timeout_s=10, cpu_s=10, memory_mb=512)).verdict == "memory"


def test_killed_by_a_signal_is_crashed():
    assert verdict("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)").verdict == "crashed"


def test_huge_output_fails_and_keeps_only_a_tail():
    ran = verdict("def add(a, b):\n    while True:\n        print('x' * 100_000)")
    assert ran.verdict in ("failed", "timeout") and len(ran.stderr) <= Limits().output_chars


@pytest.mark.slow
def test_a_huge_answer_is_a_failure_not_a_hang():
    ran = verdict("def add(a, b):\n    return 'x' * (8 << 20)", limits=Limits(timeout_s=10, cpu_s=10))
    assert ran.verdict == "failed" and "not an answer" in ran.detail


@pytest.mark.slow
@needs_namespaces
def test_fork_bomb_is_contained():
    source = """
        import os
        def add(a, b):
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """
    assert verdict(source).verdict in ("crashed", "timeout")
    assert not processes_left("program.py")


@needs_namespaces
def test_subprocess_and_os_system_cannot_write_outside(tmp_path):
    target = tmp_path / "planted"
    source = f"""
        import os, subprocess
        os.system("touch {target}")
        subprocess.run(["sh", "-c", "echo x > {target}"])
        def add(a, b):
            return a + b
    """
    assert verdict(source).verdict == "passed"  # the program is right; its side effects went nowhere
    assert not target.exists()


@needs_namespaces
def test_deleting_files_outside_fails_and_they_survive(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    source = f"""
        import shutil
        shutil.rmtree({str(tmp_path)!r})
        def add(a, b):
            return a + b
    """
    ran = verdict(source)
    assert ran.verdict == "failed" and refused(ran.detail + ran.stderr)
    assert keep.read_text() == "precious"


@needs_namespaces
def test_network_connection_fails_and_nothing_arrives():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    source = f"""
        import socket
        def add(a, b):
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
            return a + b
    """
    ran = verdict(source)
    assert ran.verdict == "failed" and "Error" in ran.detail
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()


def test_no_code_and_syntax_errors_are_failures_with_a_reason():
    assert check_one(None, ADD).detail == "no code in the completion"
    broken = verdict("def add(a, b:\n    return a + b")
    assert broken.verdict == "failed" and "SyntaxError" in broken.detail


def test_check_function_tests_see_the_program_through_the_proxy():
    tests = CheckFunction(
        "inc",
        "def helper(x):\n    return x + 1\n\ndef check(candidate):\n    assert candidate(1) == helper(1)\n",
    )
    assert verdict("def inc(x):\n    return x + 1", tests).verdict == "passed"
    assert verdict("def inc(x):\n    return x", tests).verdict == "failed"


@pytest.mark.slow
def test_many_programs_keep_their_order_and_a_hostile_one_does_not_stop_the_rest():
    sources = ["def add(a, b):\n    return a + b\n"] * 3 + ["def add(a, b):\n    while True: pass\n"]
    sources += ["import os\nos._exit(0)\n", None, "def add(a, b):\n    return a + b\n"]
    verdicts = [v.verdict for v in check_many([(s, ADD) for s in sources], limits=QUICK, workers=3)]
    assert verdicts == ["passed"] * 3 + ["timeout", "failed", "failed", "passed"]


NESTED: dict = {}
for _ in range(30):
    NESTED = {"k": NESTED}


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        pytest.param(10**5000, id="int-of-5001-digits"),  # over the 4,300-digit limit of str(int)
        pytest.param(NESTED, id="dict-30-deep"),  # MBPP+ nests 27 deep
        1.5,
        2 - 3j,
        float("inf"),
        "text\n",
        b"\x00\xff",
        [1, [2]],
        (1, (2,)),
        {1, 2},
        frozenset({3}),
        {"a": 1, 2: (3,)},
        (),
    ],
)
def test_values_round_trip_through_the_codec_with_their_types(value):
    back = decode(encode(value))
    assert back == value and type(back) is type(value)


def test_subclasses_of_plain_types_cross_as_the_plain_value():
    from collections import Counter, OrderedDict, namedtuple

    class Liar(int):
        def __eq__(self, other):
            return True

        def __int__(self):
            return 0  # an override cannot change what crosses: int's own value is read

    point = namedtuple("point", "x y")
    for value, plain in [(Counter("abca"), {"a": 2, "b": 1, "c": 1}), (OrderedDict(a=1), {"a": 1}),
                         (point(1, 2), (1, 2)), (Liar(7), 7)]:  # fmt: skip
        back = decode(encode(value))
        assert back == plain and type(back) is type(plain)


def test_nan_round_trips_and_junk_is_refused():
    assert decode(encode(float("nan"))) != decode(encode(float("nan")))  # still a nan
    for junk in ({"tuple": 3}, {"bytes": 5}, {"a": 1, "b": 2}, {"float": "1e400x"}):
        with pytest.raises(ValueError):
            decode(junk)


def test_non_utf8_on_stderr_is_kept_with_replacement_characters():
    source = (
        "import sys\nsys.stderr.buffer.write(b'bad \\xff\\xfe bytes\\n')\ndef add(a, b):\n    return a + b"
    )
    ran = verdict(source)
    assert ran.verdict == "passed" and "bad \ufffd\ufffd bytes" in ran.stderr


def test_reference_answers_whole_or_up_to_the_first_it_cannot_give():
    from harness.sandbox.check import reference_answers

    program = "def f(x):\n    if x == 3:\n        raise ValueError('too big')\n    return x * 2\n"
    assert reference_answers(program, "f", [[1], [2]]) == [2, 4]
    with pytest.raises(
        ValueError, match=r"answered 2 of 4 inputs \(failed: CandidateRaised: ValueError: too big\)"
    ):
        reference_answers(program, "f", [[1], [2], [3], [4]])
    assert reference_answers(program, "f", [[1], [2], [3], [4]], partial=True) == [2, 4]
    with pytest.raises(ValueError, match="answered 0 of 1"):
        reference_answers(program, "f", [[3]], partial=True)


def test_an_answer_over_the_bound_fails_unless_the_tests_expect_large_answers():
    big = "def add(a, b):\n    return 'x' * (2 << 20)\n"
    expected = CallTests("add", [([1, 2], "x" * (2 << 20))])
    assert "not an answer" in check_one(big, expected).detail  # the 1 MiB default
    expected.max_answer_bytes = 4 << 20  # as HumanEval+'s tests say when their answers are large
    assert check_one(big, expected).verdict == "passed"


def test_nesting_counts_alike_on_both_sides():
    deep: dict = {}
    for _ in range(150):
        deep = {"k": deep}
    assert decode(encode(deep)) == deep
    for _ in range(100):
        deep = {"k": deep}
    with pytest.raises(Exception, match="nested too deeply"):
        encode(deep)
