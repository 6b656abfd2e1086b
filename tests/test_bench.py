"""The performance benchmarks' own logic, on shapes small enough for the test suite: every DFT
implementation the loss benchmark compares gives our loss and gradients, the check catches one that
does not, and the page is rendered from the JSON alone with each goal met or not, and every
disagreement listed."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys

import pytest
from transformers import AutoModelForCausalLM

from harness.bench import end_to_end, generation, gpu, gpu_page, loss, performance


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(loss, "VOCAB", 3000)
    monkeypatch.setattr(loss, "HIDDEN", 32)
    monkeypatch.setattr(loss, "CHUNK", 64)


def test_every_dft_implementation_gives_our_loss_and_gradients_and_the_check_can_fail(small):
    impls = [i for i in loss.DFT_IMPLEMENTATIONS if i != "trl" or importlib.util.find_spec("trl")]
    runs = {impl: loss.measure(impl, 300) for impl in impls}
    ours = runs["harness"]
    assert ours["trained_tokens"] == sum(1 for i in range(299) if (i // 64) % 3 != 0)
    assert 0.05 < ours["loss"] < 5  # the boosted targets: neither ~0 nor ~ln(V)
    for impl in impls[1:]:
        assert loss.agreement(ours, runs[impl]) is None, impl
    sft = loss.measure("cross-entropy", 300)
    assert loss.agreement(ours, sft).startswith("loss ")  # SFT is another loss
    skewed = copy.deepcopy(ours)
    projections = skewed["grad_projections"]["weight"]
    largest = max(range(len(projections)), key=lambda i: abs(projections[i]))
    projections[largest] *= 1.01  # 1% off along one direction: beyond the 1e-3 tolerance
    assert loss.agreement(ours, skewed) == "grad weight differs by 1.00e-02 of its size"


def bench_json() -> dict:
    def run(impl, tokens, seconds, gib, value=1.0):
        return {
            "impl": impl,
            "tokens": tokens,
            "trained_tokens": tokens * 2 // 3,
            "seconds": seconds,
            "peak_extra_bytes": int(gib * performance.GIB),
            "loss": value,
            "grad_projections": {},
            "disagreement": None,
            "loss_rel_to_ours": 0.0,
        }

    losses = {}
    for tokens in performance.LOSS_TOKENS:
        for impl, seconds, gib in (
            ("harness", 10, 1.05),
            ("trl", 20, 4.2),
            ("llamafactory", 12, 9.0),
            ("official", 13, 12.0),
            ("cross-entropy", 12, 9.0),
        ):
            losses[f"{impl}@{tokens}"] = run(impl, tokens, seconds, gib)
    return {
        "loss": losses,
        "trainer": {
            "harness": {"steps": 8, "batch_size": 32, "trained_tokens": 1000, "seconds": 1.0},
            "trl": {"steps": 8, "batch_size": 32, "trained_tokens": 1000, "seconds": 2.0},
        },
        "generation": {
            "harness": {"completions": 100, "seconds": 2.0, "scores": {"test": 0.5}},
            "lm-eval": {"completions": 100, "seconds": 4.0, "scores": {"test": 0.5}},
        },
        "sampling": {
            "padded": {"completions": 256, "tokens": 25_600, "seconds": 8.0, "score": 0.25},
            "continuous": {"completions": 256, "tokens": 25_000, "seconds": 5.0, "score": 0.25},
        },
        "provenance": {
            "commit": "abc",
            "dirty": False,
            "date": "d",
            "platform": "p",
            "python": "3.11",
            "cpus": 2,
        },
        "versions": {"trl": "1.16.0"},
    }


def test_the_page_states_each_goal_and_each_missing_row():
    page = performance.render(bench_json())
    assert "peak extra memory is 1.05 GiB (goal at most 1.1 GiB: met), 4.0× less than TRL's" in page
    assert "What any chunked loss must hold at once is 1.11 GiB: the head's fp32 gradient (0.51)" in page
    assert "its time is 0.83 × plain cross-entropy (goal at most 0.9 × plain cross-entropy: met)" in page
    assert "Ours / TRL: 2.00 × (goal at least 1.5 ×: met)" in page
    assert "Ours / lm-eval: **2.00×**, with the same score on every split" in page
    assert "| before: padded batches | 256 | 25,600 | 8.0 | 32.0 | 3200 | 25.0 |" in page
    assert "After / before: **1.60×** completions per second." in page
    assert "## On a GPU\n\nNot measured: no GPU was lent to the run that wrote this page." in page
    assert "## Disagreements" not in page and performance.disagreements(bench_json()) == []


def test_a_peer_that_disagrees_is_listed_and_a_missed_goal_said():
    bench = bench_json()
    bench["loss"]["trl@8192"]["disagreement"] = "loss 0.5 vs ours 1"
    bench["loss"]["harness@8192"]["peak_extra_bytes"] = 2 * performance.GIB
    bench["generation"]["lm-eval"]["scores"] = {"test": 0.25}
    found = performance.disagreements(bench)
    assert found == [
        "loss trl@8192: loss 0.5 vs ours 1",
        "generation: lm-eval scores {'test': 0.25}, ours {'test': 0.5}",
    ]
    page = performance.render(bench)
    assert "2.00 GiB (goal at most 1.1 GiB: NOT met)" in page
    assert page.endswith("- generation: lm-eval scores {'test': 0.25}, ours {'test': 0.5}\n")


def test_a_nan_from_a_peer_is_a_disagreement_not_a_match():
    ours = {"loss": 1.0, "grad_projections": {"hidden": [1.0, -2.0], "weight": [0.5, 0.25]}}
    assert loss.agreement(ours, copy.deepcopy(ours)) is None
    nan_loss = copy.deepcopy(ours) | {"loss": float("nan")}
    assert loss.agreement(ours, nan_loss) == "loss nan vs ours 1"
    nan_grad = copy.deepcopy(ours)
    nan_grad["grad_projections"]["weight"][1] = float("nan")
    assert loss.agreement(ours, nan_grad) == "grad weight differs by nan of its size"


def test_a_failed_measurement_or_a_missing_page_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert performance.main(["--leaderboard-dir", str(tmp_path), "--render-only"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: --render-only: no {tmp_path / 'performance.json'}; run without it to measure\n"
    with pytest.raises(
        performance.MeasurementFailed,
        match=r"^harness.bench.loss --impl nope --tokens 8 failed: .*invalid choice",
    ):
        performance.child("harness.bench.loss", "--impl", "nope", "--tokens", "8")
    assert list(tmp_path.iterdir()) == []


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path):
    """A one-commit git project, then an uncommitted edit in its working tree."""
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "state.txt").write_text("committed\n")
    git("init", "--quiet", cwd=repo)
    git("add", "state.txt", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "one", cwd=repo)
    (repo / "state.txt").write_text("uncommitted\n")
    return repo


@pytest.mark.slow
def test_end_to_end_times_a_session_in_a_fresh_clone_of_the_commit(project):
    commit, dirty = end_to_end.head(project)
    assert len(commit) == 40 and dirty
    # The session reads the clone's file: the commit's, not the working tree's.
    script = (
        "import pathlib; state = pathlib.Path('state.txt').read_text().strip();"
        "print('training...'); print(f'[sft seed 0] matches the reference r.json: {state}');"
        "print('[dft seed 0] differs from the reference r2.json: test 1.0 -> 2.0')"
    )
    run = end_to_end.time_session(project, commit, [sys.executable, "-c", script])
    assert run["lines"] == [
        "[sft seed 0] matches the reference r.json: committed",
        "[dft seed 0] differs from the reference r2.json: test 1.0 -> 2.0",
    ]
    assert (run["matched"], run["differed"]) == (1, 1) and run["seconds"] > 0
    with pytest.raises(end_to_end.SessionFailed, match=r"failed after \d+ s: out of memory$"):
        failing = "import sys; print('loading'); print('out of memory'); sys.exit(3)"
        end_to_end.time_session(project, commit, [sys.executable, "-c", failing])
    with pytest.raises(end_to_end.SessionFailed, match=r"^git -C .* checkout --quiet 0{40} failed"):
        end_to_end.time_session(project, "0" * 40, [sys.executable, "-c", "pass"])


def test_the_end_to_end_section_replaces_its_not_measured_line():
    bench = bench_json()
    assert "- End to end: the wall time of each `nox -s train-*`" in performance.render(bench)
    bench["end-to-end"] = {
        "commit": "0123456789abcdef",
        "uncommitted_changes_not_measured": True,
        "smollm2_cached": False,
        "runs": {"train-math": {"seconds": 461.4, "matched": 3, "differed": 0, "lines": []}},
    }
    page = performance.render(bench)
    assert "- End to end:" not in page
    assert "| `nox -s train-math` | 7 min 41 s | 3 | 0 |" in page
    assert "the clones measured the commit without them" in page


def test_device_cuda_without_cuda_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpu.torch.cuda, "is_available", lambda: False)
    assert performance.main(["--leaderboard-dir", str(tmp_path), "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --device cuda: no CUDA device is visible (torch ") and err.count("\n") == 1
    assert err.endswith("the CPU benchmarks are python -m harness.bench\n")
    monkeypatch.setattr(gpu, "cuda_problem", lambda: None)  # a GPU part only
    assert (
        performance.main(["--leaderboard-dir", str(tmp_path), "--device", "cuda", "--only", "code-execution"])
        == 1
    )
    assert (
        capsys.readouterr().err
        == "error: --only code-execution: not a GPU part (one of loss, trainer, generation)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_gpu_shapes(monkeypatch):
    """The GPU bench's shapes made small enough for a CPU: the embedded tokenizer's vocabulary."""
    monkeypatch.setitem(gpu.HEADS, "Qwen2.5-0.5B", (720, 32))
    monkeypatch.setitem(
        gpu.BACKBONES,
        "Qwen2.5-0.5B",
        dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
    )


def test_the_gpu_loss_measurement_runs_on_a_cpu_and_a_missing_peer_is_a_row(tiny_gpu_shapes, monkeypatch):
    ours = gpu.measure_loss("harness", "Qwen2.5-0.5B", 600, device="cpu", reps=1)
    assert ours["trained_tokens"] == sum(1 for i in range(599) if (i // 64) % 3 != 0)
    assert 0.05 < ours["loss"] < 5 and ours["seconds"] > 0
    plain = gpu.measure_loss("cross-entropy", "Qwen2.5-0.5B", 600, device="cpu", reps=1)
    assert gpu.loss_agreement(ours, plain).startswith("loss ")  # SFT is another loss: the check can fail
    assert gpu.loss_agreement(ours, ours) is None
    monkeypatch.setitem(gpu.PEER_MODULES, "trl", "no_such_module_here")
    assert gpu.measure_loss("trl", "Qwen2.5-0.5B", 600, device="cpu") == {
        "impl": "trl",
        "head": "Qwen2.5-0.5B",
        "tokens": 600,
        "missing": "not installed",
    }


@pytest.mark.slow
def test_the_gpu_trainer_measurement_runs_ours_on_a_cpu(tiny_gpu_shapes, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu, "BATCH", 4)  # a quarter of the GPU's batch: the same code, a CPU's time
    parameters = gpu.make_backbone("Qwen2.5-0.5B", tmp_path / "m", tmp_path / "rows.jsonl", 48)
    assert parameters == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(tmp_path / "m").parameters()
    )
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 48 and all(
        row["completion"][0]["content"].count("\n") >= gpu.ROW_PARTS - 1 for row in rows
    )
    run = gpu.measure_trainer(
        "harness", str(tmp_path / "m"), str(tmp_path / "rows.jsonl"), device="cpu", steps=3
    )
    assert len(run["step_seconds"]) == len(run["step_tokens"]) == 3
    # Median over the timed steps (the third only, of three): that step's tokens over its seconds.
    assert run["trained_tokens_per_s"] == pytest.approx(run["step_tokens"][2] / run["step_seconds"][2])


def gpu_bench(trl_missing: bool = False) -> dict:
    def loss_run(impl, seconds, gib):
        return {"impl": impl, "seconds": seconds, "peak_extra_bytes": gib * 2**30, "disagreement": None}

    losses = {}
    for head in gpu.HEADS:
        for tokens in gpu.LOSS_TOKENS:
            for impl, seconds, gib in (
                ("harness", 0.016, 0.9),
                ("trl", 0.016, 0.95),
                ("liger", 0.2, 1.6),
                ("cut-cross-entropy", 0.02, 0.5),
                ("cross-entropy", 0.026, 14.2),
            ):
                losses[f"{impl}@{head}@{tokens}"] = loss_run(impl, seconds, gib)
                if trl_missing and impl == "trl":
                    losses[f"{impl}@{head}@{tokens}"] = {"impl": "trl", "missing": "not installed"}
    trainer = {}
    for shape, params in (("Qwen2.5-0.5B", 494_032_768), ("Qwen2.5-1.5B", 1_543_714_304)):
        trainer[f"harness@{shape}"] = {
            "trained_tokens_per_s": 70_000.0,
            "peak_bytes": 9 * 2**30,
            "parameters": params,
        }
        trainer[f"trl@{shape}"] = {
            "trained_tokens_per_s": 50_000.0,
            "peak_bytes": 9 * 2**30,
            "parameters": params,
        }
    return {
        "device": {"name": "NVIDIA H200", "count": 1, "cuda": "13.0", "driver": "580.1"},
        "commit": "0123456789abcdef",
        "dirty": False,
        "date": "2026-12-05",
        "versions": {"torch": "2.14.1", "trl": "1.16.0"},
        "loss": losses,
        "trainer": trainer,
        "generation": {
            "harness@Qwen2.5-0.5B": {"completions": 384, "seconds": 12.0},
            "lm-eval@Qwen2.5-0.5B": {"completions": 384, "seconds": 24.0},
            "vllm@Qwen2.5-0.5B": {"impl": "vllm", "missing": "not installed"},
        },
    }


def test_the_gpu_sections_show_measured_rows_goals_and_missing_peers():
    page = "\n".join(gpu_page.section(gpu_bench()))
    assert "1 x NVIDIA H200, CUDA 13.0, driver 580.1; dense bf16 peak 989 TFLOP/s." in page
    assert "| Qwen2.5-0.5B, 8,192 | 16 / 0.90 | 16 / 0.95 | 200 / 1.60 | 20 / 0.50 | 26 / 14.20 |" in page
    assert "Qwen2.5-7B at 32,768: 1.00x TRL's time, 0.95x its memory (met)." in page
    # MFU: 6 x 1,543,714,304 x 70,000 / 989e12 = 65.6%.
    assert "| Qwen2.5-1.5B | ours | 70,000 | 9.0 | 66% | 1.40x (goal 1.3x) |" in page
    assert "| vllm | not installed | | |" in page and "| harness | 384 | 12.0 | 32.0 |" in page
    missing = "\n".join(gpu_page.section(gpu_bench(trl_missing=True)))
    assert "| not installed |" in missing and "Goal, no slower and no larger than TRL: not judged" in missing


def test_a_cpu_run_keeps_the_gpu_sections_and_a_gpu_page_renders_alone(tmp_path, monkeypatch):
    bench = bench_json() | {"gpu": gpu_bench()}
    (tmp_path / "performance.json").write_text(json.dumps(bench))
    monkeypatch.setattr(performance, "PARTS", ("generation",))
    monkeypatch.setattr(performance, "measure", lambda part: bench_json()[part])
    assert performance.main(["--leaderboard-dir", str(tmp_path)]) == 0
    kept = json.loads((tmp_path / "performance.json").read_text())
    assert kept["gpu"] == gpu_bench() and "loss" not in kept  # a plain run re-measures the CPU parts only
    page = performance.render({"gpu": gpu_bench()})
    assert page.startswith("# Performance against the peers") and "## On a GPU" in page


@pytest.mark.slow
def test_the_sampled_bench_makes_the_same_completions_both_ways_and_can_set_their_mean_length():
    """The GPU bench's random backbone never stops on its own; the hook on its output head makes a
    sample end after ``mean_length`` tokens on average. Here on the tiny model: the padded and the
    continuous path make the same samples (per-sample seeds), about 6 tokens long."""
    shape = (8, 4, 64, 2)  # prompts, samples, budget, prompts per batch
    padded, continuous = (
        generation.measure_sampled(impl, "tiny", "cpu", shape, 6) for impl in ("padded", "continuous")
    )
    assert padded["completions"] == continuous["completions"] == 32
    assert padded["tokens"] == continuous["tokens"] and padded["score"] == continuous["score"]
    assert 3 < continuous["tokens"] / 32 < 10  # geometric, mean 6 (the stop token itself not counted)


def test_an_end_to_end_measurement_older_than_the_references_says_so():
    import subprocess

    from harness.bench.performance import PROJECT, references_changed_since, render

    first = subprocess.run(
        ["git", "-C", str(PROJECT), "rev-list", "--max-parents=0", "HEAD"], capture_output=True, text=True
    ).stdout.split()
    if not first:
        pytest.skip("not a git checkout")
    since = references_changed_since(first[-1])  # the first commit's results/ are not today's
    assert since is not None and len(since["commit"]) == 40 and since["date"][:2] == "20"
    assert references_changed_since("0" * 40) is None  # a commit git does not know: nothing claimed
    measured = {"commit": first[-1], "uncommitted_changes_not_measured": False, "smollm2_cached": True,
                "runs": {"train-math": {"seconds": 300.0, "matched": 3, "differed": 0}}}  # fmt: skip
    page = render({"end-to-end": measured}, since)
    assert "⚠ The committed reference records (`results/`) changed after this measurement" in page
    assert "⚠" not in render({"end-to-end": measured}, None)
