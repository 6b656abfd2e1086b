"""Where and with what a run happened: the provenance every record carries.

The commit (and whether the code had uncommitted changes), the package versions and how they
compare with the lock file, Python, the platform, the device, the machine and how it computed
(:mod:`harness.numerics`), and the date.

>>> sorted(provenance()) == sorted(["commit", "date", "device", "dirty", "host", "lock", "numerics",
...     "packages", "platform", "python"])
True
"""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import numerics
from harness.environment import lock_file, lock_state, packages

_SOURCE_DIR = Path(__file__).resolve().parent  # the commit recorded is the one of this code


# Folders of outputs, not code (studies: the records of a study kept apart from results/, such as the
# replicate study's numeric paths): what a run writes there must not make its own record "dirty".
OUTPUT_FOLDERS = ("results", "studies", "leaderboards", "runs")


def provenance(device: str | None = None) -> dict[str, Any]:
    """Where and with what a run happened: commit, package versions, Python, platform, the device
    it computed on (``device``, as ``--device`` says; default CUDA when available), the machine
    (:func:`harness.numerics.host`: CPU model and level, threads, GPUs) and how it computed
    (:func:`harness.numerics.state`: pinned or native, ATen's level, the libraries' settings), date.

    ``dirty`` says whether the code had uncommitted changes (the output folders do not count);
    ``lock`` whether the installed packages are exactly those of ``constraints.txt``
    (:func:`lock_state`).

    >>> sorted(provenance())
    ['commit', 'date', 'device', 'dirty', 'host', 'lock', 'numerics', 'packages', 'platform', 'python']
    """
    commit, dirty = _git_state(_SOURCE_DIR)
    return {
        "commit": commit,
        "dirty": dirty,
        "packages": packages(),
        "lock": lock_state(lock_file(_SOURCE_DIR)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": _device(device),
        "host": numerics.host(),
        "numerics": numerics.state(device),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git_state(folder: Path) -> tuple[str | None, bool]:
    """``(HEAD sha, has uncommitted changes)``, or ``(None, False)`` without git or outside a repo."""

    def git(*args: str) -> str | None:
        # --no-optional-locks: reading the state must not rewrite .git/index under a concurrent commit.
        command = ["git", "--no-optional-locks", "-C", str(folder), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):  # no git binary, or it hung
            return None
        return done.stdout if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if head is None:
        return None, False
    # Untracked files do not count, nor do the output folders: a run rewrites records and pages.
    outputs = [f":(top,exclude){folder}" for folder in OUTPUT_FOLDERS]
    status = git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", *outputs)
    return head.strip(), bool(status and status.strip())


def _device(device: str | None = None) -> str:
    if numerics.device_kind(device) == "cpu":
        return "cpu"
    import torch  # imported here: reading records must not need torch

    return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
