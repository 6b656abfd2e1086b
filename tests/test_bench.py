"""The performance benchmarks' own logic, on shapes small enough for the test suite: every DFT
implementation the loss benchmark compares gives our loss and gradients, the check catches one that
does not, and the page is rendered from the JSON alone with each goal met or not, and every
disagreement listed."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys

import pytest

from harness.bench import end_to_end, loss, performance


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
    assert "Needs a GPU, none was lent to this run: the loss at 32,768 tokens." in page
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
    assert performance.main(["--out", str(tmp_path), "--render-only"]) == 1
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
