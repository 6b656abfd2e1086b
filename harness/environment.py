"""The installed versions that can change a trained model or a score: a run's environment.

A record keeps them in its provenance; a training folder keeps them in ``environment.json``, written
by the trainer when it starts, so a finished or half-done training is reused only by the same
environment (a training launched by hand on several nodes included). The environment also names
how the numbers were computed (:func:`harness.numerics.key`: ``pinned AVX2 on AMD``, ``cuda NVIDIA H200``):
a model trained natively on an AVX-512 host is not the model a pinned run would train.

>>> sorted(current()) == sorted({"python", "numerics", *PACKAGES} - {"harness"})
True
>>> version("no-such-package-anywhere") is None
True

A record's environment (:func:`of_record`) is what of its provenance can change its scores; the
lock file's pins (:func:`read_lock`) and how the installed packages compare with them
(:func:`lock_state`) are recorded in every record's provenance.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
from pathlib import Path
from typing import Any

from harness import numerics

# The packages whose versions can change a score; their versions are a record's environment.
PACKAGES = (
    "torch",
    "torchvision",
    "transformers",
    "tokenizers",
    "safetensors",
    "datasets",
    "numpy",
    "sympy",
    "math-verify",
    "lm-eval",
    "qwen-vl-utils",
    "pillow",
    "harness",
)
FILE = "environment.json"  # in a training folder: the environment that trained it


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def packages() -> dict[str, str | None]:
    return {name: version(name) for name in PACKAGES}


def current(device: str | None = None) -> dict[str, Any]:
    """Python, the versions of :data:`PACKAGES`, less the harness's own (a record's commit says
    that), and the numerics of computing on ``device`` (default: CUDA when available): what a
    record's environment is compared by."""
    versions = {k: v for k, v in packages().items() if k != "harness"}
    return {"python": platform.python_version(), **versions, "numerics": numerics.current_key(device)}


def of_record(record: dict[str, Any]) -> dict[str, Any]:
    """What of a record's provenance can change its scores without changing its configuration: the
    versions of :data:`PACKAGES` (less the harness's own: the commit says that), Python, and how it
    computed (:func:`harness.numerics.key`: ``pinned AVX2 on AMD``, ``native AVX512 on AMD EPYC``, ``cuda
    NVIDIA H200``; ``not recorded`` for a record made before hosts were recorded).

    >>> of_record({"provenance": {"python": "3.11", "packages": {"torch": "2.14.1", "harness": "0.1"},
    ...     "numerics": {"mode": "pinned", "device": "cpu", "capability": "AVX2"}, "host": {}}})
    {'python': '3.11', 'torch': '2.14.1', 'numerics': 'pinned AVX2'}
    """
    origin = record["provenance"]
    packages = {k: v for k, v in (origin.get("packages") or {}).items() if k != "harness"}
    return {
        "python": origin.get("python"),
        **packages,
        "numerics": numerics.key(origin.get("numerics"), origin.get("host")),
    }


def differences(reference: dict[str, Any], yours: dict[str, Any]) -> list[str]:
    """What is known to differ between the runs of two records: the numerics (CPU level and mode,
    the GPU: :func:`harness.numerics.describe_difference`), then each package and Python.

    >>> def made(torch, numerics):
    ...     return {"provenance": {"packages": {"torch": torch}, "python": "3.11", "host": {},
    ...             "numerics": {"mode": numerics, "device": "cpu", "capability": "AVX2"}}}
    >>> differences(made("2.14.1", "pinned"), made("2.14.0", "pinned"))
    ['torch 2.14.1 -> 2.14.0']
    >>> differences(made("2.14.1", "native"), made("2.14.1", "pinned"))
    ['numerics native AVX2 on None -> pinned AVX2']
    """
    theirs, ours = of_record(reference), of_record(yours)
    found = []
    numbers = numerics.describe_difference(theirs.pop("numerics"), ours.pop("numerics"))
    if numbers:
        found.append(numbers)
    names = dict.fromkeys([*theirs, *ours])  # a package only one of them had is a difference too
    return found + [f"{k} {theirs.get(k)} -> {ours.get(k)}" for k in names if theirs.get(k) != ours.get(k)]


# --- the lock file: the locked environment (nox -s lock), beside the harness package ----------------

LOCK_NAME = "constraints.txt"  # the locked environment (nox -s lock), beside the harness package


def lock_file(package_dir: Path | None = None) -> Path:
    """The lock file beside the harness package (``package_dir``: where that package is)."""
    return (package_dir or Path(__file__).resolve().parent).parent / LOCK_NAME


def read_lock(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{normalized package name: version}`` of a constraints file (``name==version`` lines).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     lock = Path(folder) / "constraints.txt"
    ...     _ = lock.write_text("# header\\nTransformers==5.24.0\\nmath_verify==0.8.0\\n")
    ...     read_lock(lock)
    {'transformers': '5.24.0', 'math-verify': '0.8.0'}
    """
    path = lock_file() if path is None else path
    pins = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, equals, version = line.partition("==")
        if not equals or not name.strip() or not version.strip():
            raise ValueError(f"{path}:{number}: expected name==version, got {line!r}")
        pins[normalize(name)] = version.strip()
    return pins


def normalize(name: str) -> str:
    """A package name as PEP 503 compares them: ``Math_Verify`` -> ``math-verify``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_state(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """How the installed packages compare with the lock file: ``{"sha256": first 16 hex digits of
    the file, "differs": {name: "installed (locked version)"}}``. ``differs`` names every package
    installed at another version than the locked one (empty in the locked environment; a locked
    package that is not installed, such as ruff outside the lint session, is no deviation: the lock
    constrains versions, it does not require packages). None when there is no lock file (an
    installed, not cloned, harness); an unreadable lock is recorded as ``error``, never raised: a
    finished run must not be lost to it."""
    path = lock_file() if path is None else Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    try:
        pins = read_lock(path)
    except ValueError as error:
        return {"sha256": digest, "differs": {}, "error": str(error)}
    differs = {}
    for name, locked in pins.items():
        installed = version(name)
        if installed is not None and installed != locked:
            differs[name] = f"{installed} (locked {locked})"
    return {"sha256": digest, "differs": differs}
