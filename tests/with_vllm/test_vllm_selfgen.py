"""Self-generated data through the real vLLM (its CPU build): the same command as with the Hugging
Face backend, vLLM sampling the answers. Run by ``nox -s test-vllm``; skipped where vLLM is missing."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm", reason="needs vLLM's CPU build: nox -s test-vllm")

import tasks  # noqa: E402
from harness.config import Sampling  # noqa: E402
from harness.offline import selfgen  # noqa: E402


def test_selfgen_through_vllm_keeps_what_the_grader_accepts_and_finds_its_folder(tmp_path, capsys):
    sampling = Sampling(max_new_tokens=48, sample_seed=1)
    meta = selfgen("tiny", "math-words", tmp_path, limit=6, sampling=sampling, generation_backend="vllm")
    assert meta["selfgen"]["backend"] == "vllm" and meta["counts"]["samples"] == 24
    task = tasks.get("math-words")
    examples = {e["id"]: e for e in task.load("train", limit=6)}
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert all(s["score"] == task.score(examples[s["id"]], s["completion"]) for s in samples)
    assert [r["completion"][0]["content"] for r in rows] == [
        s["completion"] for s in samples if s["score"] == 1.0
    ]
    # The same command again finds the finished folder: vLLM's samples are not made twice.
    again = selfgen("tiny", "math-words", tmp_path, limit=6, sampling=sampling, generation_backend="vllm")
    assert again == meta and "finished already" in capsys.readouterr().err
