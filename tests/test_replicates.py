"""The replicate study's page from records alone: the seed spread, the numeric spread pooled over the
seeds run under several paths, their ratio and F-test, in closed form; the command's bad input."""

from __future__ import annotations

import math

import pytest

from harness import results
from harness.replicates import main
from harness.report.replicates import f_test, page, pooled_sd, sd
from harness.results import make_record

HPARAMS = {"lr": 1e-3, "batch_size": 32, "epochs": 2.0, "model": "tiny"}


def run(method, seed, test, ood, numerics="pinned", threads=2):
    scores = {
        "test": {"role": "test", "value": test / 100, "stderr": 0.03, "n": 200, "samples_per_example": 1},
        "ood-a": {"role": "ood", "value": ood / 100, "stderr": 0.02, "n": 200, "samples_per_example": 1},
    }
    made = make_record(task="math-words", domain="math", backbone="embedded/tiny-qwen2", method=method,
                       hparams={**HPARAMS, "objective": method, "seed": seed}, data={}, scores=scores,
                       wall_time_s=1.0, run_dir=None)  # fmt: skip
    made["provenance"]["numerics"] = {"mode": numerics, "device": "cpu", "capability": "AVX2"}
    made["provenance"]["host"] = {"cpu": "AMD EPYC", "vendor": "AuthenticAMD", "threads": threads}
    return made


def test_spreads_in_closed_form():
    assert sd([2.0, 4.0, 6.0]) == pytest.approx(2.0)
    # Two seeds under three paths each: deviations from each seed's mean, pooled over 4 dof.
    value, dof = pooled_sd([[10.0, 12.0, 14.0], [20.0, 20.0, 23.0]])
    assert dof == 4 and value == pytest.approx(math.sqrt((4 + 0 + 4 + 1 + 1 + 4) / 4))
    from scipy.stats import f

    assert f_test((2.0, 4), (1.0, 9)) == pytest.approx(2 * f.sf(4.0, 4, 9))
    assert f_test((1.0, 4), (2.0, 9)) == pytest.approx(2 * f.cdf(0.25, 4, 9))
    assert f_test((1.0, 0), (2.0, 9)) is None


def test_the_page_compares_the_seeds_with_the_numeric_paths(monkeypatch):
    monkeypatch.setattr(results, "provenance", lambda device=None: {"commit": "a" * 40, "date": "2026-12-07"})
    seeds = [run("sft", s, t, 15.0) for s, t in enumerate([70.0, 74.0, 72.0, 76.0, 68.0])]
    paths = {
        "native": [run("sft", 0, 64.0, 15.0, "native", 1), run("sft", 1, 80.0, 15.0, "native", 1)],
        "pinned-1-thread": [run("sft", 0, 70.0, 15.0, "pinned", 1), run("sft", 1, 74.0, 15.0, "pinned", 1)],
    }
    text = page("math-words", seeds, paths, "python -m harness.replicates").text
    seed_spread = sd([70.0, 74.0, 72.0, 76.0, 68.0])
    # pinned-1-thread reproduces the reference's every score: the same run again, left out.
    numeric, dof = pooled_sd([[70.0, 64.0], [74.0, 80.0]])
    p = f_test((numeric, dof), (seed_spread, 4))
    assert dof == 2
    row = next(line for line in text.splitlines() if line.startswith("| SFT | in-domain"))
    assert row == (
        f"| SFT | in-domain | 5 | {seed_spread:.2f} | {sd([70.0, 74.0, 72.0]):.2f} | {numeric:.2f} (dof 2) |"
        f" {numeric / seed_spread:.2f} | {p:.3f} | {'yes' if numeric <= seed_spread or p >= 0.05 else 'no'} |"
    )
    # The run of every seed under each path, the reference first; a path equal to it is visible as such.
    assert "| reference | pinned AVX2 on AMD, 2 threads | 70.0 / 15.0 | 74.0 / 15.0 |" in text
    assert (
        "| pinned-1-thread | pinned AVX2 on AMD, 1 thread (the reference's bits: not counted) | 70.0 / 15.0 |"
        " 74.0 / 15.0 |" in text
    )
    assert "| native | native AVX2 on AMD EPYC, 1 thread | 64.0 / 15.0 | 80.0 / 15.0 |" in text
    # OOD: every run 15.0, no spread of either kind.
    assert "| SFT | OOD mean | 5 | 0.00 | 0.00 | 0.00 (dof 2) | – | – | yes |" in text
    assert "- sft, OOD mean: the numeric spread is as the seed spread (none): the seeds cover it." in text


def test_bad_input_is_one_line(tmp_path, capsys):
    assert (
        main(["--task", "math-words", "--results-dir", str(tmp_path), "--paths-dir", str(tmp_path / "x")])
        == 1
    )
    assert capsys.readouterr().err.strip() == f"error: --paths-dir {tmp_path / 'x'}: no such folder"
    (tmp_path / "paths" / "native").mkdir(parents=True)
    argv = [
        "--results-dir",
        str(tmp_path),
        "--paths-dir",
        str(tmp_path / "paths"),
        "--leaderboard-dir",
        str(tmp_path / "lb"),
    ]
    assert main(argv) == 1
    assert "no records of task math-words in its folders" in capsys.readouterr().err
    assert not (tmp_path / "lb").exists()
