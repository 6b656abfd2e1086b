"""The vLLM generation backend: one line where vLLM or a GPU is missing; the adapter hands vLLM the
Hugging Face backend's prompt tokens, stop tokens, budget and sample count and reads its tokens back
the same way; and, on a GPU with vLLM, greedy scores that agree with the Hugging Face backend."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from types import SimpleNamespace

import pytest
import torch

import harness.vllm_engine as vllm_engine
import tasks
from harness.config import Sampling
from harness.config.resolve import check_generation_backend, parse_experiment
from harness.errors import ConfigError
from harness.evaluate import evaluate_loaded, evaluate_task, main
from harness.models import load_model, stop_token_ids

VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None


def test_the_flag_says_what_to_install_where_vllm_is_missing(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    assert main(["--task", "math-words", "--generation-backend", "vllm"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "error: --generation-backend vllm: vLLM is not installed here;"
    )
    assert "nox -s eval-vllm" in err


def test_the_flag_needs_a_gpu_and_enough_of_them(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a)
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^--generation-backend vllm needs a CUDA GPU and none is visible"):
        check_generation_backend("vllm", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"^--tensor-parallel-size 4 exceeds the 2 visible GPU\(s\)$"):
        check_generation_backend("vllm", 4)
    check_generation_backend("vllm", 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--tensor-parallel-size", "2"],
            "--tensor-parallel-size 2 applies only to --generation-backend vllm",
        ),
        (["--tensor-parallel-size", "0"], "--tensor-parallel-size must be >= 1"),
        (
            ["--eval-backend", "lm-eval", "--generation-backend", "vllm"],
            "--eval-backend lm-eval generates with lm-eval's own Hugging Face model",
        ),
    ],
)
def test_experiment_flags_are_checked_before_any_work(argv, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_experiment(["--methods", "base", *argv])


class GreedyHF:
    """A stand-in for ``vllm.LLM`` that answers each request with the Hugging Face model's own greedy
    continuation of exactly the tokens it was given, honouring its stop tokens, budget and n: what
    the adapter sends and how it reads the answer back is then all that can differ."""

    requests: list = []

    def __init__(self, model, **kwargs):
        self.model = load_model(model)
        self.kwargs = kwargs

    def generate(self, prompts, params, use_tqdm=False):
        outputs = []
        for prompt, p in zip(prompts, params, strict=True):
            GreedyHF.requests.append((prompt, p))
            ids = torch.tensor([prompt["prompt_token_ids"]])
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=p.max_tokens,
                do_sample=False,
                eos_token_id=p.stop_token_ids,
                pad_token_id=0,
                num_return_sequences=p.n,
            )
            new = out[:, ids.shape[1] :].tolist()
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=tokens) for tokens in new]))
        return outputs


@pytest.mark.slow
def test_the_adapter_sends_the_hf_backends_prompts_and_reads_answers_back_alike(
    monkeypatch, tokenizer, tmp_path
):
    fake = types.ModuleType("vllm")
    fake.LLM = GreedyHF
    fake.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setattr(vllm_engine, "check_generation_backend", lambda *a: None)
    task = tasks.get("math-words")
    sampling = Sampling(max_new_tokens=24, sample_seed=5)  # greedy, one completion each
    hf = evaluate_loaded(load_model("tiny"), tokenizer, task, ["test"], 6, sampling, tmp_path / "hf")
    GreedyHF.requests.clear()
    with vllm_engine.Engine("tiny") as engine:
        assert engine.llm.kwargs["generation_config"] == "vllm"  # no defaults from the model folder
        via_engine = evaluate_loaded(engine, tokenizer, task, ["test"], 6, sampling, tmp_path / "engine")
    assert via_engine == hf
    params = [p for _, p in GreedyHF.requests]
    assert [p.seed for p in params] == [5 * 100_003 + i for i in range(6)]  # a seed per prompt
    assert {(p.n, p.max_tokens, p.temperature, p.top_p) for p in params} == {(1, 24, 0.0, 1.0)}
    assert all(p.stop_token_ids == stop_token_ids(tokenizer) for p in params)
    hf_rows, engine_rows = (
        [json.loads(line) for line in (tmp_path / name / "test.jsonl").read_text().splitlines()]
        for name in ("hf", "engine")
    )
    assert engine_rows == hf_rows and all(row["completion"].strip() for row in hf_rows)  # real answers


@pytest.mark.gpu
@pytest.mark.skipif(not VLLM_INSTALLED, reason="needs vLLM (nox -s eval-vllm)")
def test_vllm_greedy_scores_agree_with_the_hf_backend(tmp_path):
    hf = evaluate_task("tiny", "math-words", limit=64, samples_dir=tmp_path / "hf")
    fast = evaluate_task(
        "tiny", "math-words", limit=64, samples_dir=tmp_path / "vllm", generation_backend="vllm"
    )
    for split in hf:
        # bf16 kernels against fp32: a rare near-tie may flip; the scores stay within two examples.
        assert abs(hf[split]["value"] - fast[split]["value"]) <= 2 / hf[split]["n"]
