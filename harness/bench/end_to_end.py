"""End to end: the wall time of each ``nox -s train-*`` session from a fresh clone.

What a user waits for on first contact: ``git clone`` then ``nox -s train-math``, the locked
environment's install included. Each session runs in its own fresh clone of one commit (no ``.nox``
folder, so nothing is reused between sessions but pip's download cache and, for ``train-smollm2``,
the converted model in the harness cache, whose presence is recorded). The clone is of the commit,
not of the working tree: uncommitted changes are not measured, and the record says so.

It is opt-in (``python -m harness.bench --only end-to-end``): the four sessions take about 50
minutes on 2 cores, more than the rest of the benchmarks together. Besides the time, each session's
comparison with the committed reference is kept: how many records matched it score for score.

>>> reference_lines("x\\n[sft seed 0] matches the reference r.json: every score is identical\\n"
...                 "[dft seed 0] differs from the reference r2.json: test 1 -> 2\\n")
{'matched': 1, 'differed': 1, 'lines': ['[sft seed 0] matches the reference r.json: every score is identical', '[dft seed 0] differs from the reference r2.json: test 1 -> 2']}
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.gguf import PACKAGED, cache_root

SESSIONS = ("train-math", "train-code", "train-vlm", "train-smollm2")


class SessionFailed(Exception):
    """A session exited non-zero, or its clone could not be made: the command and its last line."""


def reference_lines(output: str) -> dict[str, Any]:
    """The experiment's comparison with the committed reference, from a session's output."""
    lines = [line for line in output.splitlines() if line.startswith("[") and "the reference" in line]
    return {
        "matched": sum(" matches the reference " in line for line in lines),
        "differed": sum(" differs from the reference " in line for line in lines),
        "lines": lines,
    }


def fresh_clone(repo: Path, commit: str, into: Path) -> Path:
    """``git clone`` of ``repo`` at ``commit`` into ``into`` (no hard links: a clone of its own)."""
    for command in (
        ["git", "clone", "--quiet", "--no-hardlinks", str(repo), str(into)],
        ["git", "-C", str(into), "checkout", "--quiet", commit],
    ):
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode:
            raise SessionFailed(f"{' '.join(command)} failed: {completed.stderr.strip()}")
    return into


def time_session(repo: Path, commit: str, command: list[str]) -> dict[str, Any]:
    """Run ``command`` in a fresh clone of ``repo`` at ``commit``; its wall time and reference lines."""
    with tempfile.TemporaryDirectory(prefix="harness-end-to-end-") as scratch:
        started = time.perf_counter()
        clone = fresh_clone(repo, commit, Path(scratch) / "harness")
        completed = subprocess.run(
            command, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        seconds = time.perf_counter() - started
    if completed.returncode:
        last = (completed.stdout.strip().splitlines() or [f"exit code {completed.returncode}"])[-1]
        raise SessionFailed(f"{' '.join(command)} failed after {seconds:.0f} s: {last}")
    return {"seconds": seconds, **reference_lines(completed.stdout)}


def head(repo: Path) -> tuple[str, bool]:
    """The commit a clone of ``repo`` gets, and whether ``repo``'s working tree differs from it."""
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"],  # a new file not committed is not cloned
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return commit, bool(status.strip())


def measure(repo: Path, sessions: tuple[str, ...] = SESSIONS) -> dict[str, Any]:
    """Every session in ``sessions`` from its own fresh clone of ``repo``'s HEAD."""
    nox = shutil.which("nox")
    if nox is None:
        raise SessionFailed("end-to-end needs nox on PATH (pip install nox), as a user runs the sessions")
    commit, dirty = head(repo)
    stem = Path(PACKAGED["smollm2-135m"].file).stem  # converted once, then reused by every clone
    cached = any((cache_root() / "models").glob(f"{stem}-*"))
    runs = {}
    for session in sessions:
        print(f"end to end: nox -s {session} from a fresh clone of {commit[:10]}", flush=True)
        runs[session] = time_session(repo, commit, [nox, "-s", session])
    return {
        "commit": commit,
        "uncommitted_changes_not_measured": dirty,
        "smollm2_cached": cached,
        "runs": runs,
    }


def section(measured: dict[str, Any]) -> list[str]:
    """The page's section (:mod:`harness.bench.performance`)."""
    lines = [
        "## End to end: each `nox -s train-*` from a fresh clone",
        "",
        f"`git clone` at `{measured['commit'][:10]}`, then `nox -s <session>`, each session in its own"
        " clone: the locked environment's install (torch from the local wheel cache), training, evaluation"
        " and the comparison of every record with the committed reference."
        + (
            " The converted SmolLM2 model was already in the harness cache (a first run converts it, about"
            " 40 s more)."
            if measured["smollm2_cached"]
            else ""
        ),
        "",
        "| session | wall time | records equal to the reference | records that differ |",
        "|---|---:|---:|---:|",
    ]
    for session, run in measured["runs"].items():
        minutes, seconds = divmod(round(run["seconds"]), 60)
        lines.append(
            f"| `nox -s {session}` | {minutes} min {seconds:02d} s | {run['matched']} | {run['differed']} |"
        )
    lines.append("")
    if measured["uncommitted_changes_not_measured"]:
        lines += [
            "The working tree had uncommitted changes; the clones measured the commit without them.",
            "",
        ]
    return lines
