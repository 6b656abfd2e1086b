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
"""

from __future__ import annotations

import importlib.metadata
import platform
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
