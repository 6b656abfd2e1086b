"""The continuum: its command line and plan, the warm-up ladder, and the map page rendered from
records alone (differences, their standard errors, strength ordering, what the summary claims)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness import results
from harness.continuum import main, map_experiments, parse_continuum, plan, warm_up, warmup_config
from harness.errors import ConfigError
from harness.models import backbone_name
from harness.report import continuum
from harness.results import make_record
from harness.runs import plan_method, replicates

HPARAMS = {"lr": 1e-3, "batch_size": 8, "epochs": 1, "train_limit": 64}


@pytest.fixture(autouse=True)
def fixed_provenance(monkeypatch):
    provenance = {"commit": "a" * 40, "dirty": False, "device": "cpu", "date": "2026-11-28T10:00:00+00:00"}
    monkeypatch.setattr(results, "provenance", lambda device=None: dict(provenance))


def record(method, model, test, ood, *, noise=0.0, seed=0, mean_p=None):
    hparams = {} if method == "base" else {**HPARAMS, "model": model, "objective": method, "seed": seed}
    if noise:
        hparams["train_noise"] = noise
    scores = {
        "test": {"role": "test", "value": test, "stderr": 0.05, "n": 100, "samples_per_example": 1},
        "ood-x": {"role": "ood", "value": ood, "stderr": 0.04, "n": 100, "samples_per_example": 1},
    }
    made = make_record(task="math-words", domain="math", backbone=model, method=method, hparams=hparams,
                       data={}, scores=scores, wall_time_s=1.0, run_dir=None)  # fmt: skip
    if mean_p is not None:
        made["token_probs"] = {
            "edges": [0.0, 0.5, 1.0],
            "counts": [1, 3],
            "tokens": 4,
            "rows": 1,
            "mean": mean_p,
        }
    return made


def the_map():
    """Two starting points (the stronger one listed first) and one noise rate; DFT ahead from the
    strong start, behind from the weak one."""
    return [
        record("base", "strong", 0.5, 0.4, mean_p=0.8),
        record("base", "weak", 0.1, 0.1, mean_p=0.3),
        record("sft", "strong", 0.6, 0.4),
        record("dft", "strong", 0.7, 0.5),
        record("sft", "weak", 0.4, 0.3),
        record("dft", "weak", 0.2, 0.25),
        record("sft", "weak", 0.3, 0.2, noise=0.4),
        record("dft", "weak", 0.25, 0.2, noise=0.4),
    ]


def test_the_page_gives_each_objective_minus_sft_ordered_by_strength():
    [(name, page)] = continuum.pages(the_map(), "results").items()
    assert name == f"continuum-math-words-{continuum.map_id(the_map()[2]['hparams'])}.md"
    text = page.text
    se = 100 * math.hypot(0.05, 0.05)
    weak = next(line for line in text.splitlines() if line.startswith("| `weak`"))
    strong = next(line for line in text.splitlines() if line.startswith("| `strong`"))
    assert text.index("| `weak`") < text.index("| `strong`")  # by strength, not by name or input order
    assert weak == (
        f"| `weak` | 0.300 | 10.0 ± 5.0 | 10.0 ± 4.0 | 40.0 ± 5.0 | 30.0 ± 4.0 | -20.0 ± {se:.1f} | -5.0 ± 5.7 |"
    )
    assert strong.endswith(f"| +10.0 ± {se:.1f} | +10.0 ± 5.7 |")
    noise = [line for line in text.splitlines() if line.startswith(("| 0 |", "| 0.4 |"))]
    assert noise == [
        f"| 0 | 40.0 ± 5.0 | 30.0 ± 4.0 | -20.0 ± {se:.1f} | -5.0 ± 5.7 |",
        f"| 0.4 | 30.0 ± 5.0 | 20.0 ± 4.0 | -5.0 ± {se:.1f} | +0.0 ± 5.7 |",
    ]
    assert "Above SFT somewhere: DFT at 2 of 8 points. With one seed at some points" in text
    assert (
        "| DFT | 1 of 2 (seeds unmeasured) | 1 of 2 (seeds unmeasured) | 0 of 2 (seeds unmeasured) |" in text
    )
    assert [path for path, _ in page.plots] == [
        f"plots/{name[:-3]}-strength.png",
        f"plots/{name[:-3]}-noise-1.png",
    ]
    assert page.plots[0][1]()[:4] == b"\x89PNG"


def test_significance_is_claimed_only_where_seeds_measured_it():
    seeded = [record("base", m, 0.1, 0.1, mean_p=p) for m, p in (("weak", 0.3), ("strong", 0.8))]
    for seed, jitter in enumerate((0.0, 0.01, -0.01)):
        for model, sft, dft in (("weak", 0.4, 0.41), ("strong", 0.3, 0.6)):
            seeded += [
                record("sft", model, sft + jitter, 0.3, seed=seed),
                record("dft", model, dft + jitter, 0.3, seed=seed),
            ]
    text = next(iter(continuum.pages(seeded, "results").values())).text
    assert (
        "| DFT | 2 of 2 (significantly: 1 above, 0 below) | 0 of 2 (significantly: 0 above, 0 below) |"
        in text
    )
    assert "Above SFT somewhere: DFT at 2 of 4 points, 1 significantly.\n" in text
    assert "| `strong` |" in text and "+30.0*" in text


def test_two_variants_of_one_objective_are_two_lines_never_pooled_as_seeds():
    records = the_map() + [
        record("q-family", m, t, o)
        | {"hparams": {**HPARAMS, "model": m, "objective": "q-family", "seed": 0, "q": q}}
        for m, t, o, q in (("weak", 0.5, 0.3, 0.5), ("strong", 0.5, 0.3, 0.5), ("weak", 0.1, 0.1, 10.0))
    ]
    text = next(iter(continuum.pages(records, "results").values())).text
    assert "q-family (q 0.5) − SFT in-domain" in text and "q-family − SFT in-domain" in text
    header = next(line for line in text.splitlines() if line.startswith("| starting point"))
    assert header.index("DFT −") < header.index("q-family (q 0.5) −")  # in the order of the objectives


def test_no_map_without_two_points_and_sft():
    one_point = [record("sft", "weak", 0.4, 0.3), record("dft", "weak", 0.2, 0.2)]
    assert continuum.pages(one_point, "results") == {}
    without_sft = [r for r in the_map() if r["method"] != "sft"]
    assert continuum.pages(without_sft, "results") == {}
    # Two points, but on no axis (one clean start, one noisy start): nothing is claimed either way.
    apart = [record(m, "strong", 0.6, 0.4) for m in ("sft", "dft")]
    apart += [record(m, "weak", 0.3, 0.2, noise=0.4) for m in ("sft", "dft")]
    text = next(iter(continuum.pages(apart, "results").values())).text
    assert "No objective besides SFT has a point to compare." in text and "above SFT at any" not in text
    # Another learning rate is another map: points are never mixed across configurations.
    other = [record("sft", "strong", 0.6, 0.4) | {"hparams": {**HPARAMS, "lr": 2e-3, "model": "strong",
                                                               "objective": "sft", "seed": 0}}]  # fmt: skip
    assert len(continuum.pages(the_map() + other, "results")) == 1


def test_the_plan_and_its_bad_inputs():
    study = parse_continuum(
        ["--methods", "base,sft,dft", "--train-limit", "64", "--warmup-rows", "32", "--noise", "0.25"]
    )
    assert plan(study) == [(0, 0.0, "base,sft,dft"), (32, 0.0, "base,sft,dft"), (0, 0.25, "sft,dft")]
    bad = [
        (["--methods", "dft,asft"], "--methods: a map compares each objective with SFT"),
        (["--warmup-rows", "64"], "--warmup-rows 64 needs --train-limit"),
        (
            ["--train-limit", "1990", "--warmup-rows", "64"],
            "--warmup-rows 64: the warm-up pool is the rows after",
        ),
        (["--noise", "1"], r"--noise must be in \[0, 1\), got 1.0"),
        (["--train-noise", "0.1"], "--train-noise: a map trains at each of --noise"),
        (["--warmup-rows", "-1"], "--warmup-rows must be >= 0, got -1"),
        (
            ["--train-limit", "64", "--warmup-rows", "0", "16", "--batch-size", "32"],
            "--warmup-rows 16 is fewer than --batch-size 32: a warm-up trains at least one batch",
        ),
    ]
    for argv, message in bad:
        with pytest.raises(ConfigError, match=f"^{message}"):
            parse_continuum(argv)


def test_a_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys):
    argv = ["--methods", "sft,dft", "--train-limit", "64", "--warmup-rows", "32", "--noise", "0.25",
            "--seeds", "0", "1", "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "r"),
            "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "from the backbone tiny, --train-noise 0: base,sft,dft (5 todo)"
    assert lines[1].startswith("from a warm-up on 32 rows (to train: ")
    assert lines[1].endswith("--train-noise 0: base,sft,dft (5 todo)")
    assert lines[2:] == [
        "from the backbone tiny, --train-noise 0.25: sft,dft (4 todo)",
        "seeds 0 1; runs: 14 todo",
    ]
    assert list(tmp_path.iterdir()) == []  # no warm-up, no record, no folder
    # A half-written warm-up (its summary cut short) is still to train, not a traceback.
    folder = Path(warmup_config(parse_continuum(argv).experiment, 32).output_dir)
    folder.mkdir(parents=True)
    (folder / "train_summary.json").write_text('{"model_dir": ')
    assert main(argv) == 0
    assert "from a warm-up on 32 rows (to train: " in capsys.readouterr().out


@pytest.mark.slow
def test_a_warm_up_trains_on_the_rows_after_the_mapped_ones_once(tmp_path, monkeypatch):
    shared = ["--methods", "sft,dft", "--train-limit", "16", "--steps", "1", "--batch-size", "8",
              "--warmup-rows", "8", "--noise", "0", "--results-dir", str(tmp_path / "results"), "--no-progress"]  # fmt: skip
    argv = [*shared, "--runs-dir", str(tmp_path / "runs")]
    study = parse_continuum(argv)
    model = warm_up(study.experiment, 8)
    [folder] = (tmp_path / "runs" / "math-words-embedded--tiny-qwen2").glob("warmup-8-*")
    summary = json.loads((folder / "train_summary.json").read_text())
    config = summary["config"]
    assert (config["train_offset"], config["train_limit"], summary["rows"]) == (16, 8, 8)
    assert summary["config"]["objective"] == "sft" and model == str(folder / "model")
    # Named by the run (not "model"), and by the warm-up's configuration: another map's is another.
    assert backbone_name(model) == f"math-words-embedded--tiny-qwen2/{folder.name}"
    experiments = map_experiments(study)  # the warm-up is reused, not trained again: the same summary
    assert [e.train.model for e in experiments] == ["tiny", model]
    assert json.loads((folder / "train_summary.json").read_text())["wall_time_s"] == summary["wall_time_s"]

    # Its runs are keyed by what the start is, not where it sits: the runs folder spelled otherwise
    # (relative, from another working directory) plans the same records with the same hyperparameters.
    def planned(experiment):
        return [(p.record, p.slot) for p in (plan_method(s, m) for s, m in replicates(experiment))]

    monkeypatch.chdir(tmp_path)
    elsewhere = map_experiments(parse_continuum([*shared, "--runs-dir", "runs"]))
    assert elsewhere[1].train.model == "runs/math-words-embedded--tiny-qwen2/" + folder.name + "/model"
    assert planned(elsewhere[1]) == planned(experiments[1])
    warmup_id = folder.name.rsplit("-", 1)[1]
    assert planned(experiments[1])[1][1]["hparams"]["model"] == f"tiny + sft on 8 rows ({warmup_id}, seed 0)"


def test_a_loop_of_trained_starts_is_named_by_its_path_not_recursed_forever(tmp_path):
    from dataclasses import asdict

    from harness.config import TrainConfig
    from harness.runs import model_identity

    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for folder, start in ((a, b), (b, a)):  # each retrained from the other since: a loop
        folder.mkdir(parents=True)
        summary = {"config": asdict(TrainConfig(model=str(start))), "world_size": 1, "rows": 8}
        (folder.parent / "train_summary.json").write_text(json.dumps(summary))
    name = model_identity(str(a))
    # a, named by b's training, named by the path of a where the loop closes
    assert name.startswith(f"{a} + sft on 8 rows (") and name.count(" + sft on 8 rows (") == 2
