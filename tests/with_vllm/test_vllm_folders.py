"""Model folders and the real vLLM (its CPU build; ``nox -s test-vllm``): the folder's own
``generation_config.json`` changes nothing, and a folder vLLM cannot load is one line. Each test starts
its own engines, one at a time, after test_real_vllm.py's engine is closed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="needs vLLM's CPU build: nox -s test-vllm")

import harness.vllm_engine as vllm_engine  # noqa: E402 - after the skip: it needs vLLM installed
from harness.config import Sampling  # noqa: E402
from harness.evaluate import main  # noqa: E402
from harness.models import resolve  # noqa: E402
from tests.with_vllm.test_real_vllm import prompts_of  # noqa: E402


def test_a_folders_generation_config_is_ignored_by_vllm_too(tokenizer, tmp_path):
    plain = Path(resolve("tiny"))
    hostile = tmp_path / "hostile"
    shutil.copytree(plain, hostile)
    conversations = prompts_of("math-words", 16)
    greedy = Sampling(max_new_tokens=24)
    sampled = Sampling(temperature=1.0, num_samples=2, max_new_tokens=24)
    with vllm_engine.Engine(str(plain)) as engine:
        want = [engine.generate(tokenizer, conversations, spec) for spec in (greedy, sampled)]
    answer = want[0][0]
    early = tokenizer(answer[0], add_special_tokens=False)["input_ids"][3]
    config = json.loads((plain / "generation_config.json").read_text())
    config |= {"repetition_penalty": 1.8, "top_k": 2, "eos_token_id": [tokenizer.eos_token_id, early]}
    (hostile / "generation_config.json").write_text(json.dumps(config))
    with vllm_engine.Engine(str(hostile)) as engine:
        got = [engine.generate(tokenizer, conversations, spec) for spec in (greedy, sampled)]
    assert got == want
    assert early in tokenizer(answer[0], add_special_tokens=False)["input_ids"][:4]  # it would have cut


def test_a_folder_vllm_cannot_load_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(resolve("tiny"), broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps(config | {"architectures": ["NoSuchModelForCausalLM"]}))
    assert (
        main(
            [
                "--model",
                str(broken),
                "--task",
                "math-words",
                "--eval-limit",
                "2",
                "--generation-backend",
                "vllm",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith(f"error: --generation-backend vllm cannot load {broken}: ") and err.count("\n") == 1
