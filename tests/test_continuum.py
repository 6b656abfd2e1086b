"""The continuum: its command line and plan, the search for starts by competence, and the map page
rendered from records alone (starts, every point, Benjamini-Hochberg stars, what the summary claims)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness import continuum as command
from harness import results
from harness.continuum import find_starts, main, parse_continuum, plan, warmup_config
from harness.errors import ConfigError
from harness.models import backbone_name
from harness.report import continuum
from harness.results import make_record
from harness.stats import benjamini_hochberg, over_seeds, pooled_seed_variance, welch_p_value

HPARAMS = {"lr": 1e-3, "batch_size": 8, "epochs": 1, "train_limit": 64}


@pytest.fixture(autouse=True)
def fixed_provenance(monkeypatch):
    provenance = {"commit": "a" * 40, "dirty": False, "device": "cpu", "date": "2026-11-28T10:00:00+00:00"}
    monkeypatch.setattr(results, "provenance", lambda device=None: dict(provenance))


def record(
    method,
    model,
    test,
    ood,
    *,
    noise=0.0,
    style=None,
    seed=0,
    mean_p=None,
    deciding=None,
    start=None,
    se=0.05,
):
    hparams = {} if method == "base" else {**HPARAMS, "model": model, "objective": method, "seed": seed}
    if noise:
        hparams["train_noise"] = noise
    if style:
        hparams["train_style"] = style
    scores = {
        "test": {"role": "test", "value": test, "stderr": se, "n": 100, "samples_per_example": 1},
        "ood-x": {"role": "ood", "value": ood, "stderr": 0.8 * se, "n": 100, "samples_per_example": 1},
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
        if deciding is not None:
            made["token_probs"]["deciding"] = {
                "edges": [0.0, 1.0],
                "counts": [1],
                "tokens": 1,
                "mean": deciding,
            }
    if start is not None:
        made["start"] = start
    return made


def the_map():
    """Two starts, the competent one (made for a target of 50, reached at 48) listed first, and from
    the weak backbone a noise rate and the off style; DFT ahead from the strong start, behind from
    the weak one (one seed each)."""
    made = {"target": 50.0, "tolerance": 5.0, "steps": 24, "probes": [{"steps": 16, "in_domain": 0.3},
                                                                       {"steps": 24, "in_domain": 0.48}]}  # fmt: skip
    return [
        record("base", "strong", 0.48, 0.4, mean_p=0.8, deciding=0.7, start=made),
        record("base", "weak", 0.1, 0.1, mean_p=0.3),
        record("sft", "strong", 0.6, 0.4),
        record("dft", "strong", 0.7, 0.5),
        record("sft", "weak", 0.4, 0.3),
        record("dft", "weak", 0.2, 0.25),
        record("sft", "weak", 0.3, 0.2, noise=0.4),
        record("dft", "weak", 0.25, 0.2, noise=0.4),
        record("sft", "weak", 0.35, 0.2, style="numbered"),
        record("dft", "weak", 0.3, 0.25, style="numbered"),
    ]


def lines_of(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_the_page_lists_the_starts_by_competence_and_every_point():
    [(name, page)] = continuum.pages(the_map(), "results").items()
    assert name == f"continuum-math-words-{continuum.map_id(the_map()[2]['hparams'])}.md"
    text = page.text
    se = 100 * math.hypot(0.05, 0.05)
    # The starts, the weak backbone first (its own score), with both strengths and the target.
    assert lines_of(text, "| `weak` | – |") == [
        "| `weak` | – | 10.0 ± 5.0 | 10.0 ± 4.0 | 0.300 | unmeasured | `weak` |"
    ]
    assert lines_of(text, "| start 50 |")[0] == (
        "| start 50 | 50 | 48.0 ± 5.0 | 40.0 ± 4.0 | 0.800 | 0.700 | `strong`: SFT for 24 steps on the warm-up"
        " pool (tried 16: 30.0, 24: 48.0) |"
    )
    assert "⚠" not in text  # 48 is within 5 points of 50
    # Every point, from each start in order: own style, then noise, then the other style.
    assert lines_of(text, "| `weak` | ")[1:4] == [
        f"| `weak` | own style | 40.0 ± 5.0 | 30.0 ± 4.0 | -20.0 ± {se:.1f} | -5.0 ± 5.7 |",
        f"| `weak` | noise 0.4 | 30.0 ± 5.0 | 20.0 ± 4.0 | -5.0 ± {se:.1f} | +0.0 ± 5.7 |",
        f"| `weak` | numbered style | 35.0 ± 5.0 | 20.0 ± 4.0 | -5.0 ± {se:.1f} | +5.0 ± 5.7 |",
    ]
    assert lines_of(text, "| start 50 | own style |")[:1] == [
        f"| start 50 | own style | 60.0 ± 5.0 | 40.0 ± 4.0 | +10.0 ± {se:.1f} | +10.0 ± 5.7 |"
    ]
    assert text.index("| `weak` | own style") < text.index("| start 50 | own style")
    # One seed everywhere: nothing is tested, nothing starred, and the page says so.
    assert "With one seed at some points the seed variance there is unmeasured" in text
    assert "*" not in "".join(lines_of(text, "| `weak` | own style"))
    assert "| DFT | 0 of 1 (0* above, 0* below) | 1 of 1 (0* above, 0* below) | 0 of 1" not in text
    assert (
        "| DFT | 1 of 2 (0* above, 0* below) | 1 of 2 (0* above, 0* below) | 0 of 1 (0* above, 0* below)"
        in text
    )
    assert [path for path, _ in page.plots] == [
        f"plots/{name[:-3]}-competence.png",
        f"plots/{name[:-3]}-noise.png",
    ]
    assert page.plots[0][1]()[:4] == b"\x89PNG"


def test_a_start_that_misses_its_target_is_kept_and_said_so():
    records = the_map()
    records[0]["start"] = {**records[0]["start"], "target": 70.0}
    text = next(iter(continuum.pages(records, "results").values())).text
    assert (
        "⚠ start 70 scores 48.0 in-domain: it misses its target 70 by 22.0 points (tolerance 5): no warm-up"
        " length tried came closer. It stays on the map as what it is."
    ) in text
    assert "| start 70 | own style |" in text


def seeded_map(gaps: tuple[float, ...], se: float = 0.005):
    """Three seeds from the backbone at no noise and at a noise rate per further gap; DFT ``gap``
    above SFT in-domain at each, equal out of domain."""
    made = [record("base", "weak", 0.1, 0.1, mean_p=0.3)]
    for seed, jitter in enumerate((0.0, 0.01, -0.01)):
        for index, gap in enumerate(gaps):
            rate = 0.1 * index
            made += [
                record("sft", "weak", 0.4 + jitter, 0.3 + jitter, seed=seed, noise=rate, se=se),
                record("dft", "weak", 0.4 + gap + jitter, 0.3 + jitter, seed=seed, noise=rate, se=se),
            ]
    return made


def p_of(gap: float, se: float = 0.005) -> float:
    sft = [(0.4 + j, se) for j in (0.0, 0.01, -0.01)]
    return welch_p_value(over_seeds([(v + gap, s) for v, s in sft]), over_seeds(sft))


def test_stars_are_benjamini_hochberg_over_the_pages_differences():
    # Three points, in-domain and OOD: a family of six. In-domain DFT is 6 points above SFT at the
    # first (p 0.0001), 2.5 above at the second (p 0.04: significant alone at 5%), level at the third.
    text = next(iter(continuum.pages(seeded_map((0.06, 0.025, 0.0)), "results").values())).text
    assert "Benjamini–Hochberg over the page's 6 differences" in text
    p_values = [p_of(0.06), p_of(0.0), p_of(0.025), p_of(0.0), p_of(0.0), p_of(0.0)]  # page order
    assert p_values[0] < 0.001 and 0.01 < p_values[2] < 0.05
    q_values = benjamini_hochberg(p_values)
    # q of the second: p x 6 / 2 > 0.05, so it is no discovery once the page's family is counted.
    assert q_values[0] == pytest.approx(6 * p_values[0]) and q_values[2] == pytest.approx(3 * p_values[2])
    in_domain = [line for line in lines_of(text, "| `weak` | ") if "| DFT | in-domain |" in line]
    assert [line.split(" | ")[-2:] for line in in_domain] == [
        [f"{p_values[i]:.4f}" if p_values[i] >= 1e-4 else "< 0.0001", f"{q_values[i]:.4f} |"]
        for i in (0, 2, 4)
    ]
    assert "| `weak` | own style | 40.0 ± 0.8 | 30.0 ± 0.7 | +6.0* ± 1.1 | +0.0 ± 1.0 |" in text
    assert "| `weak` | noise 0.1 | 40.0 ± 0.8 | 30.0 ± 0.7 | +2.5 ± 1.1 | +0.0 ± 1.0 |" in text
    assert (
        "Significantly above SFT after the correction: DFT at 1: `weak`, own style, in-domain (+6.0*)."
    ) in text
    assert "**No objective is significantly below SFT anywhere on this map**" in text
    assert (
        "| DFT | 1 of 1 (1* above, 0* below) | 0 of 1 (0* above, 0* below) | 1 of 1 (0* above, 0* below) |"
        in text
    )


def test_no_map_without_two_points_and_sft():
    one_point = [record("sft", "weak", 0.4, 0.3), record("dft", "weak", 0.2, 0.2)]
    assert continuum.pages(one_point, "results") == {}
    without_sft = [r for r in the_map() if r["method"] != "sft"]
    assert continuum.pages(without_sft, "results") == {}
    # Another learning rate is another map: points are never mixed across configurations.
    other = [record("sft", "strong", 0.6, 0.4) | {"hparams": {**HPARAMS, "lr": 2e-3, "model": "strong",
                                                               "objective": "sft", "seed": 0}}]  # fmt: skip
    assert len(continuum.pages(the_map() + other, "results")) == 1


def test_two_variants_of_one_objective_are_two_lines_never_pooled_as_seeds():
    records = the_map() + [
        record("q-family", m, t, o)
        | {"hparams": {**HPARAMS, "model": m, "objective": "q-family", "seed": 0, "q": q}}
        for m, t, o, q in (("weak", 0.5, 0.3, 0.5), ("strong", 0.5, 0.3, 0.5), ("weak", 0.1, 0.1, 10.0))
    ]
    text = next(iter(continuum.pages(records, "results").values())).text
    assert "q-family (q 0.5) − SFT in-domain" in text and "q-family − SFT in-domain" in text
    header = lines_of(text, "| start | demonstrations")[0]
    assert header.index("DFT −") < header.index("q-family (q 0.5) −")  # in the order of the objectives


def test_the_plan_from_every_start():
    study = parse_continuum(
        [
            "--methods",
            "base",
            "sft",
            "dft",
            "--train-limit",
            "64",
            "--start-scores",
            "70",
            "50",
            "--noise",
            "0.25",
            "--off-styles",
            "numbered",
            "--reference-dir",
            "",
        ]  # fmt: skip
    )
    assert study.study.start_scores == [50.0, 70.0] and study.pool_rows == 2000 - 64
    assert plan(study) == [
        (target, rate, style, methods)
        for target in (None, 50.0, 70.0)
        for rate, style, methods in (
            (0.0, None, ["base", "sft", "dft"]),
            (0.25, None, ["sft", "dft"]),
            (0.0, "numbered", ["sft", "dft"]),
        )
    ]


def reference_with(folder: Path, base: float, sft: list[float]) -> None:
    """A reference folder holding the backbone's base record and SFT seeds at those in-domain scores."""
    records = [record("base", "embedded/tiny-qwen2", base, 0.1)]
    records += [record("sft", "embedded/tiny-qwen2", s, 0.1, seed=i) for i, s in enumerate(sft)]
    for made in records:
        results.write_record(
            made | {"hparams": {**made["hparams"], "model": "tiny"} if made["hparams"] else {}}, folder
        )


def test_bad_inputs_are_one_line_before_any_work(tmp_path):
    reference = tmp_path / "reference"
    reference_with(reference, 0.32, [0.72, 0.75, 0.74])
    where = [
        "--reference-dir",
        str(reference),
        "--results-dir",
        str(tmp_path / "r"),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    bad = [
        (["--methods", "dft", "asft"], "--methods: a map compares each objective with SFT"),
        (["--warmup-rows", "64"], "--warmup-rows is gone: the ladder is built to the starts' own scores"),
        (["--warmup-rows", "64"], "--warmup-rows is gone: the ladder is built to the starts' own scores"),
        (["--start-scores", "50"], "--start-scores 50 needs --train-limit"),
        (
            ["--train-limit", "2000", "--start-scores", "50"],
            "--start-scores 50: the warm-up pool is the rows after --train-limit 2000",
        ),
        (
            ["--train-limit", "1990", "--start-scores", "50", "--batch-size", "16"],
            r"--start-scores 50: the warm-up pool \(rows 1991-2000 of task math-words split train\) has 10 rows, fewer than one batch",
        ),
        (
            ["--train-limit", "500", "--start-scores", "50", "80", *where],
            r"--start-scores 80: above what SFT reaches on math-words from embedded/tiny-qwen2 in .*reference/ \(73.7, sft-",
        ),
        (
            ["--train-limit", "500", "--start-scores", "30", *where],
            r"--start-scores 30: the backbone itself scores 32.0 in-domain",
        ),
        (["--start-scores", "0"], r"--start-scores must be a percentage in \(0, 100\], got 0.0"),
        (
            ["--off-styles", "terse"],
            "--off-styles terse: task math-words has no solution style 'terse': its styles are steps, numbered",
        ),
        (["--off-styles", "steps"], "--off-styles steps is task math-words's own style"),
        (["--off-styles", "numbered", "numbered"], "--off-styles numbered numbered: a style is named twice"),
        (["--train-style", "numbered"], "--train-style: a map trains in the task's own style"),
        (["--noise", "1"], r"--noise must be in \[0, 1\), got 1.0"),
        (["--train-noise", "0.1"], "--train-noise: a map trains at each of --noise"),
    ]
    for argv, message in bad:
        with pytest.raises(ConfigError, match=f"^{message}"):
            parse_continuum(argv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference"]  # nothing written by a refusal
    assert parse_continuum(["--train-limit", "500", "--start-scores", "50", "70", *where]).pool_rows == 1500


def test_the_search_takes_the_first_length_within_the_tolerance(monkeypatch):
    # Scores by warm-up length: a dip first (as a few SFT steps at a high rate do), then a climb.
    scores = {8: 0.15, 12: 0.14, 16: 0.30, 24: 0.47, 32: 0.56, 48: 0.80, 64: 0.83}
    probed = []

    def fake_probe(continuum, steps):
        probed.append(steps)
        return f"runs/warmup-{steps}/model", scores[steps]

    monkeypatch.setattr(command, "probe", fake_probe)
    argv = [
        "--train-limit",
        "500",
        "--reference-dir",
        "",
        "--warmup-steps",
        "8",
        "12",
        "16",
        "24",
        "32",
        "48",
        "64",
    ]
    starts = find_starts(parse_continuum([*argv, "--start-scores", "50", "70", "90"]))
    assert [(s.target, s.steps) for s in starts] == [(None, None), (50.0, 24), (70.0, 48), (90.0, 64)]
    # 50: 24 steps (47.0) is within 5 points. 70: 32 (56) is short, 48 (80) overshoots by 10: the
    # closest tried is 48. 90: nothing reaches it; the closest, 64 (83), is kept as what it is.
    assert starts[2].probes[-2:] == [{"steps": 32, "in_domain": 0.56}, {"steps": 48, "in_domain": 0.80}]
    assert starts[3].score == 0.83 and starts[0].model == "tiny"
    assert probed == [8, 12, 16, 24, 32, 48, 64]  # each length measured once, for every target
    assert starts[1].annotation(5.0) == {
        "target": 50.0,
        "tolerance": 5.0,
        "steps": 24,
        "probes": starts[1].probes,
    }


def test_a_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys):
    argv = ["--methods", "sft", "dft", "--train-limit", "64", "--start-scores", "50", "--noise", "0.25",
            "--seeds", "0", "1", "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "r"),
            "--reference-dir", "", "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "warm-ups measured (in-domain): none yet",
        "from the backbone tiny, --train-noise 0, style own: base sft dft (5 todo)",
        "from the backbone tiny, --train-noise 0.25, style own: sft dft (4 todo)",
        "from a warm-up to 50% (to find), --train-noise 0, style own: base sft dft (5 todo)",
        "from a warm-up to 50% (to find), --train-noise 0.25, style own: sft dft (4 todo)",
        "seeds 0 1; runs: 18 todo",
    ]
    assert list(tmp_path.iterdir()) == []  # no warm-up, no record, no folder
    # Measured warm-ups are read back: the start is then known, its runs planned from its folder.
    study = parse_continuum(argv)
    folder = Path(warmup_config(study, 8).output_dir)
    folder.mkdir(parents=True)
    from harness.plan import evaluation_of

    evaluation = evaluation_of(study.experiment, "base")
    (folder / command.PROBE_FILE).write_text(json.dumps({"evaluation": evaluation, "in_domain": 0.52}))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "warm-ups measured (in-domain): 8 steps 52.0" in out
    assert "from the warm-up of 8 steps for 50%, --train-noise 0, style own: base sft dft (5 todo)" in out


@pytest.mark.slow
def test_a_map_from_a_warm_up_made_to_a_target(tmp_path, monkeypatch):
    """The whole command on a tiny budget: the warm-up trains once on the pool rows, is measured,
    chosen, annotated in its base record, and every point's records land where the page finds them."""
    monkeypatch.chdir(tmp_path)
    argv = ["--methods", "sft", "dft", "--train-limit", "16", "--steps", "1", "--batch-size", "8", "--eval-limit", "1",
            "--start-scores", "1", "--warmup-steps", "1", "--noise", "0", "--off-styles", "numbered",
            "--reference-dir", "", "--results-dir", "results", "--leaderboard-dir", "pages", "--runs-dir", "runs",
            "--prob-rows", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    [folder] = (tmp_path / "runs" / "math-words-embedded--tiny-qwen2").glob("warmup-1steps-*")
    summary = json.loads((folder / "train_summary.json").read_text())
    assert (summary["config"]["train_offset"], summary["config"]["train_limit"], summary["rows"]) == (
        16,
        1984,
        1984,
    )
    assert summary["config"]["steps"] == 1 and summary["config"]["train_style"] is None
    probe = json.loads((folder / command.PROBE_FILE).read_text())
    start = f"math-words-embedded--tiny-qwen2/{folder.name}"
    assert backbone_name(str(folder / "model")) == start
    [base] = [r for r in results.load_records("results") if r["method"] == "base" and r["backbone"] == start]
    assert base["start"]["target"] == 1.0 and base["start"]["steps"] == 1
    assert base["start"]["probes"] == [{"steps": 1, "in_domain": probe["in_domain"]}]
    assert 100 * probe["in_domain"] == pytest.approx(100 * base["scores"]["test"]["value"])  # same evaluation
    assert "deciding" in base["token_probs"]
    styles = sorted(
        str(r["hparams"].get("train_style")) for r in results.load_records("results") if r["method"] == "sft"
    )
    assert styles == ["None", "None", "numbered", "numbered"]  # from each start, its own and the other
    [page] = (tmp_path / "pages").glob("continuum-math-words-*.md")
    text = page.read_text()
    assert "| start 1 | 1 |" in text and "| start 1 | numbered style |" in text
    # A second run trains nothing: the warm-up, its probe and every record are reused.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.json")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.json")} == before


def test_a_loop_of_trained_starts_is_named_by_its_path_not_recursed_forever(tmp_path):
    from dataclasses import asdict

    from harness.config import TrainConfig
    from harness.plan import model_identity

    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for folder, start in ((a, b), (b, a)):  # each retrained from the other since: a loop
        folder.mkdir(parents=True)
        summary = {"config": asdict(TrainConfig(model=str(start))), "world_size": 1, "rows": 8}
        (folder.parent / "train_summary.json").write_text(json.dumps(summary))
    name = model_identity(str(a))
    # a, named by b's training, named by the path of a where the loop closes
    assert name.startswith(f"{a} + sft on 8 rows (") and name.count(" + sft on 8 rows (") == 2
    # A start trained for a number of steps says so.
    summary = {"config": asdict(TrainConfig(model="tiny", steps=48)), "world_size": 1, "rows": 1500}
    (a.parent / "train_summary.json").write_text(json.dumps(summary))
    assert model_identity(str(a)).startswith("tiny + sft for 48 steps on 1500 rows (")


def test_the_index_repeats_what_each_map_found_and_lists_the_starts_as_backbones():
    from harness import leaderboard

    records = seeded_map((0.06, 0.025, 0.0))
    records += [
        record(m, "weak", 0.9, 0.9, style="numbered", seed=s) for m in ("sft", "dft") for s in (0, 1, 2)
    ]
    files = leaderboard.render_all(records)
    [name] = [n for n in files if n.startswith("continuum-")]
    index = files["README.md"]
    assert (
        f"- [{name[:-3]}]({name}): Significantly above SFT after the correction: DFT at 1: `weak`, own style,"
        " in-domain (+6.0*). **No objective is significantly below SFT anywhere on this map** (after the"
        " correction)."
    ) in index
    # The headline row: the base's own score and strength; the off-style and noisy runs (90 here) are
    # not candidates for a method's best configuration.
    [row] = [line for line in index.splitlines() if line.startswith("| [math](math.md)")]
    assert row.startswith(
        "| [math](math.md) | `math-words` | `weak` | 10.0 ± 5.0 | 0.300 | – | 1 | 3 | 40.0 ± 0.8 | 46.0 ± 0.8 |"
    )


def test_a_cell_whose_seeds_agree_by_chance_takes_the_methods_pooled_variance():
    # From the backbone at no noise DFT's three seeds agree (25, 25, 25.5), SFT's spread; at the
    # noise rate both spread by 4 points. Alone the agreeing seeds would give DFT a seed variance
    # near 0; pooled over the map's two points (4 dof) DFT's is (0.167 + 32) / 4 = 8.04 points².
    made = [record("base", "weak", 0.1, 0.1, mean_p=0.3)]
    dft = {0.0: (0.25, 0.25, 0.255), 0.2: (0.20, 0.24, 0.28)}
    sft = {0.0: (0.30, 0.34, 0.38), 0.2: (0.30, 0.34, 0.38)}
    for rate in (0.0, 0.2):
        for seed in range(3):
            made += [
                record("sft", "weak", sft[rate][seed], 0.3, seed=seed, noise=rate, se=0.01),
                record("dft", "weak", dft[rate][seed], 0.3, seed=seed, noise=rate, se=0.01),
            ]
    text = next(iter(continuum.pages(made, "results").values())).text
    pooled = pooled_seed_variance([list(dft[0.0]), list(dft[0.2])])
    assert pooled[1] == 4 and pooled[0] == pytest.approx(
        (2 * (0.25 - 0.251667) ** 2 + (0.255 - 0.251667) ** 2 + 0.0032) / 4, rel=1e-3
    )
    own = over_seeds([(v, 0.01) for v in dft[0.0]])
    floored = over_seeds([(v, 0.01) for v in dft[0.0]], pooled=pooled)
    assert floored.seed_dof == 4 and floored.stderr > 1.8 * own.stderr
    sft_estimate = over_seeds([(v, 0.01) for v in sft[0.0]])
    shown = f"{100 * (floored.value - sft_estimate.value):+.1f}"
    spread = 100 * math.hypot(floored.stderr, sft_estimate.stderr)
    assert f"| `weak` | own style | 34.0 ± {100 * sft_estimate.stderr:.1f} | 30.0 ± 0.8 | {shown}" in text
    assert f"{shown} ± {spread:.1f}" in text or f"{shown}* ± {spread:.1f}" in text
