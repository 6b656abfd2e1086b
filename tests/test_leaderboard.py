"""Leaderboard rendering from hand-made records with known numbers."""

from __future__ import annotations

import pytest

from harness import results
from harness.identity import config_id
from harness.leaderboard import main, render
from harness.results import load_records, make_record, write_record

HPARAMS = {"lr": 1e-5, "batch_size": 8, "epochs": 1}
BACKBONE = "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.fixture(autouse=True)
def fixed_provenance(monkeypatch):
    provenance = {
        "commit": "abcdef0123456789" * 2 + "01234567",
        "dirty": False,
        "device": "1x NVIDIA H100",
        "date": "2026-11-23T10:00:00+00:00",
    }
    monkeypatch.setattr(results, "provenance", lambda device=None: dict(provenance))


def run(
    method,
    test,
    ood_a,
    ood_b,
    *,
    hparams=None,
    task="math-words",
    domain="math",
    wall=810.0,
    seed=0,
    packages=None,
):
    if hparams is None:
        hparams = {} if method == "base" else {**HPARAMS, "objective": method}
    if method != "base":
        hparams = {**hparams, "seed": seed}
    scores = {
        "gsm8k": {"role": "test", "value": test, "stderr": 0.035},
        "svamp": {"role": "ood", "value": ood_a, "stderr": 0.03},
        "asdiv": {"role": "ood", "value": ood_b, "stderr": 0.03},
    }
    for entry in scores.values():
        entry.update(n=200, samples_per_example=1, decoding="greedy")
    record = make_record(
        task=task,
        domain=domain,
        backbone=BACKBONE,
        method=method,
        hparams=hparams,
        data={"train_examples": 2000} if method != "base" else {},
        scores=scores,
        wall_time_s=wall,
        run_dir=None,
    )
    if packages is not None:
        record["provenance"] |= {"packages": packages, "python": "3.11.7"}
    return record


@pytest.fixture
def trio():
    return [
        run("base", 0.40, 0.30, 0.20, wall=70.0),
        run("sft", 0.50, 0.30, 0.35),
        run("dft", 0.60, 0.40, 0.30, hparams={**HPARAMS, "objective": "dft", "dft_alpha": 1.0}),
    ]


def lines(page, prefix):
    return [line for line in page.splitlines() if line.startswith(prefix)]


def test_rows_means_differences_and_bold(trio):
    page = render(trio)["math"]
    assert lines(page, "| model") == [
        "| model | seeds | gsm8k (test) | svamp (ood) | asdiv (ood) | OOD mean |"
    ]
    # OOD mean stderr: sqrt(3.0^2 + 3.0^2) / 2 = 2.1
    assert lines(page, "| base") == ["| base | – | 40.0 ± 3.5 | 30.0 ± 3.0 | 20.0 ± 3.0 | 25.0 ± 2.1 |"]
    assert lines(page, "| SFT") == ["| SFT | 1 | 50.0 ± 3.5 | 30.0 ± 3.0 | **35.0 ± 3.0** | 32.5 ± 2.1 |"]
    assert lines(page, "| DFT |") == [
        "| DFT | 1 | **60.0 ± 3.5** | **40.0 ± 3.0** | 30.0 ± 3.0 | **35.0 ± 2.1** |"
    ]
    # One seed each: +10.0 would pass a z-test on the evaluation noise alone, but the training
    # variance is unmeasured, so nothing is starred and the page says why.
    assert lines(page, "| DFT − SFT") == ["| DFT − SFT | | +10.0 | +10.0 | -5.0 | +2.5 |"]
    assert "Training variance is unmeasured here (one seed)" in page


def seeded(method, tests, **kwargs):
    return [run(method, test, 0.3, 0.3, seed=seed, **kwargs) for seed, test in enumerate(tests)]


def test_seeds_are_averaged_with_their_variance_and_tested_with_welch():
    # SFT 50/52/54, DFT 68/70/72: means 52 and 70, seed variance 0.02^2 each; stderr of each mean
    # sqrt(0.035^2 + 0.0004 / 3) = 3.7; Welch dof ~415, t = 18 / 5.2 = 3.46, p = 0.0005: among the
    # table's four differences (the other three level) its q is 4p, still a discovery.
    records = [
        run("base", 0.4, 0.3, 0.2),
        *seeded("sft", [0.50, 0.52, 0.54]),
        *seeded("dft", [0.68, 0.70, 0.72]),
    ]
    page = render(records)["math"]
    assert lines(page, "| SFT") == [
        "| SFT | 3 | 52.0 ± 3.7 | **30.0 ± 3.0** | **30.0 ± 3.0** | **30.0 ± 2.1** |"
    ]
    assert lines(page, "| DFT − SFT") == ["| DFT − SFT | | +18.0* | +0.0 | +0.0 | +0.0 |"]
    assert "unmeasured" not in page.split("## ")[1]
    # +12 (DFT 62/64/66) has p = 0.049: significant alone at 5%, but its q among the four is 0.197.
    near = render([*records[:4], *seeded("dft", [0.62, 0.64, 0.66])])["math"]
    assert lines(near, "| DFT − SFT") == ["| DFT − SFT | | +12.0 | +0.0 | +0.0 | +0.0 |"]
    assert "seeds 0, 1, 2" in page and "SFT seed 2: commit" in page


def test_seed_noise_can_undo_a_difference_the_evaluation_noise_alone_would_star():
    # SFT 40/50/60 vs DFT 55/65/75: +15 exceeds 1.96 x 4.9 (the old binomial-only test), but with the
    # seed variance (0.1^2 / 3 each) the stderr of the difference is 9.5 and Welch's t (dof 7.5)
    # needs 2.34 of them.
    page = render([*seeded("sft", [0.40, 0.50, 0.60]), *seeded("dft", [0.55, 0.65, 0.75])])["math"]
    assert lines(page, "| SFT") == [
        "| SFT | 3 | 50.0 ± 6.8 | **30.0 ± 3.0** | **30.0 ± 3.0** | **30.0 ± 2.1** |"
    ]
    assert lines(page, "| DFT − SFT") == ["| DFT − SFT | | +15.0 | +0.0 | +0.0 | +0.0 |"]


def test_mixed_environments_are_shown_apart_not_averaged():
    old = {"torch": "2.14.1", "transformers": "5.23.0"}
    new = {"torch": "2.14.1", "transformers": "5.24.0"}
    records = [
        *seeded("sft", [0.50, 0.52], packages=old),
        run("sft", 0.90, 0.3, 0.3, seed=2, packages=new),
        *seeded("dft", [0.60, 0.62, 0.64], packages=old),
    ]
    page = render(records)["math"]
    headings = lines(page, "## ")
    assert headings == [
        f"## `math-words` · `{BACKBONE}` · config `{config_id(HPARAMS)}` · transformers 5.23.0",
        f"## `math-words` · `{BACKBONE}` · config `{config_id(HPARAMS)}` · transformers 5.24.0",
    ]
    assert page.count("⚠ This configuration's records come from several environments") == 2
    assert lines(page, "| SFT") == [
        "| SFT | 2 | 51.0 ± 3.6 | **30.0 ± 3.0** | **30.0 ± 3.0** | **30.0 ± 2.1** |",  # 5.23.0: seeds 0, 1
        "| SFT | 1 | 90.0 ± 3.5 | 30.0 ± 3.0 | 30.0 ± 3.0 | 30.0 ± 2.1 |",  # 5.24.0: seed 2 alone
    ]


def test_records_that_differ_only_by_host_are_shown_apart_and_say_how_they_computed():
    def on(record, mode, capability, cpu):
        numerics = {"mode": mode, "device": "cpu", "capability": capability}
        record["provenance"] |= {
            "device": "cpu",
            "host": {"cpu": cpu, "arch": "x86_64"},
            "numerics": numerics,
        }
        return record

    records = [
        *(on(r, "pinned", "AVX2", "AMD EPYC") for r in seeded("sft", [0.50, 0.52])),
        on(run("sft", 0.90, 0.3, 0.3, seed=2), "native", "AVX512", "Intel Xeon"),
        # pinned on another CPU model of the same vendor: the same group as the first AMD seeds
        on(run("dft", 0.60, 0.3, 0.3, seed=0), "pinned", "AVX2", "AMD EPYC 7B13"),
        # pinned on another vendor: not claimed equal (MKL's AVX2 branch is documented for Intel only)
        on(run("dft", 0.70, 0.3, 0.3, seed=1), "pinned", "AVX2", "Intel(R) Xeon(R) Gold 6338"),
    ]
    page = render(records)["math"]
    heading = f"## `math-words` · `{BACKBONE}` · config `{config_id(HPARAMS)}` · numerics"
    assert lines(page, "## ") == [
        f"{heading} pinned AVX2 on AMD",
        f"{heading} native AVX512 on Intel Xeon",
        f"{heading} pinned AVX2 on Intel",
    ]
    assert "SFT seed 2: commit `abcdef0123`, 2026-11-23, cpu, Intel Xeon, native AVX512, 13.5 min" in page
    assert "DFT seed 0: commit `abcdef0123`, 2026-11-23, cpu, AMD EPYC 7B13, pinned AVX2, 13.5 min" in page


def test_two_records_of_one_seed_are_refused():
    with pytest.raises(ValueError, match="two sft records .* same config and seed 0"):
        render([run("sft", 0.5, 0.3, 0.3), run("sft", 0.6, 0.3, 0.3)])


def test_header_settings_and_notes(trio):
    page = render(trio)["math"]
    assert page.startswith("# math leaderboard: SFT vs DFT and the other objectives\n")
    assert (
        "Generated by `python -m harness.leaderboard` from 3 records in `results/` - do not edit by hand."
        in page
    )
    assert f"## `math-words` · `{BACKBONE}` · config `{config_id(HPARAMS)}`" in page
    assert (
        "Hyperparameters shared by the trained rows: `batch_size=8`, `epochs=1`, `lr=1e-05`; seeds 0." in page
    )
    assert "Training data: `train_examples=2000`." in page
    assert "n = 200 per split, 1 sample per example, greedy." in page
    assert lines(page, "Provenance") == [
        f"Provenance - backbone `{BACKBONE}`, trained on the `math-words` train split, 2000 examples; base: commit `abcdef0123`, 2026-11-23, 1x NVIDIA H100, 70 s; "
        "SFT seed 0: commit `abcdef0123`, 2026-11-23, 1x NVIDIA H100, 13.5 min; "
        "DFT seed 0: commit `abcdef0123`, 2026-11-23, 1x NVIDIA H100, 13.5 min."
    ]


def test_dft_variants_and_other_objectives_are_rows_with_their_own_differences(trio):
    floor = run("dft", 0.55, 0.45, 0.35, hparams={**HPARAMS, "objective": "dft", "dft_min_weight": 0.1})
    mix = run("dft", 0.52, 0.30, 0.30, hparams={**HPARAMS, "objective": "dft", "dft_alpha": 0.5})
    q = run("q-family", 0.40, 0.30, 0.20, hparams={**HPARAMS, "objective": "q-family", "q": 10.0})
    page = render([q, mix, floor, *trio])["math"]
    assert len(lines(page, "## ")) == 1  # one configuration, so one table
    rows = [line.split(" | ")[0] for line in page.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == [
        "| model",
        "| base",
        "| SFT",
        "| DFT",
        "| DFT (alpha 0.5)",
        "| DFT (floor 0.1)",
        "| q-family",
        "| DFT − SFT",
        "| DFT (alpha 0.5) − SFT",
        "| DFT (floor 0.1) − SFT",
        "| q-family − SFT",
    ]
    assert lines(page, "| q-family − SFT") == ["| q-family − SFT | | -10.0 | +0.0 | -15.0 | -7.5 |"]
    assert lines(page, "| DFT (floor 0.1) − SFT") == [
        "| DFT (floor 0.1) − SFT | | +5.0 | +15.0 | +0.0 | +7.5 |"
    ]
    assert lines(page, "| DFT (floor 0.1) |") == [
        "| DFT (floor 0.1) | 1 | 55.0 ± 3.5 | **45.0 ± 3.0** | **35.0 ± 3.0** | **40.0 ± 2.1** |"
    ]
    assert "DFT (floor 0.1) seed 0: commit" in page


def test_rendering_is_deterministic_and_order_free(trio):
    assert render(trio) == render(trio) == render(list(reversed(trio)))


def test_ties_are_all_bold_and_rounding_noise_is_not_a_loss():
    page = render([run("sft", 0.5, 0.3, 0.2), run("dft", 0.5, 0.3, 0.2 - 1e-9)])["math"]
    for label in ["SFT", "DFT"]:  # equal as shown, so both bold
        assert lines(page, f"| {label} |") == [
            f"| {label} | 1 | **50.0 ± 3.5** | **30.0 ± 3.0** | **20.0 ± 3.0** | **25.0 ± 2.1** |"
        ]
    assert lines(page, "| DFT − SFT") == ["| DFT − SFT | | +0.0 | +0.0 | +0.0 | +0.0 |"]


def test_two_configs_make_two_tables_sharing_the_base(trio):
    other = {**HPARAMS, "lr": 2e-5}
    extra = [run("sft", 0.1, 0.1, 0.1, hparams={**other, "objective": "sft"})]
    page = render(trio + extra)["math"]
    assert render(extra + trio)["math"] == page  # tables are sorted, not in input order
    assert len(lines(page, "## ")) == 2
    assert len(lines(page, "| base |")) == 2
    assert f"config `{config_id(other)}`" in page
    assert len(lines(page, "| DFT − SFT")) == 1  # the lr=2e-5 table has SFT only


def test_domain_with_only_base_records_renders():
    pages = render([run("base", 0.4, 0.3, 0.2, task="humaneval-x", domain="code")])
    page = pages["code"]
    assert f"## `humaneval-x` · `{BACKBONE}` · base model only" in page
    assert lines(page, "| base") == [
        "| base | – | 40.0 ± 3.5 | 30.0 ± 3.0 | 20.0 ± 3.0 | 25.0 ± 2.1 |"
    ]  # no bold alone
    assert "DFT − SFT |" not in page and "Hyperparameters" not in page


def test_domains_get_separate_pages(trio):
    pages = render([*trio, run("base", 0.1, 0.1, 0.1, task="humaneval-x", domain="code")])
    assert list(pages) == ["code", "math"]
    assert "from 3 records" in pages["math"] and "from 1 records" in pages["code"]


def test_a_split_missing_from_a_row_is_a_dash(trio):
    del trio[0]["scores"]["asdiv"]
    page = render(trio)["math"]
    assert lines(page, "| base") == ["| base | – | 40.0 ± 3.5 | 30.0 ± 3.0 | – | – |"]


def test_cli_writes_the_domain_page(tmp_path, trio, capsys):
    results_dir, out = tmp_path / "results", tmp_path / "leaderboards"
    for rec in trio:
        write_record(rec, results_dir)
    assert main(["--results-dir", str(results_dir), "--leaderboard-dir", str(out)]) == 0
    page = out / "math.md"
    assert capsys.readouterr().out.splitlines() == [str(out / "README.md"), str(page)]
    first = page.read_bytes()
    assert first.decode() == render(load_records(results_dir), source=str(results_dir))["math"]
    assert main(["--results-dir", str(results_dir), "--leaderboard-dir", str(out)]) == 0
    assert page.read_bytes() == first
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "math.md"]  # no temp file left behind


def test_cli_skips_a_malformed_record_by_name(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("[", encoding="utf-8")
    assert main(["--results-dir", str(tmp_path), "--leaderboard-dir", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"note: skipped {tmp_path / 'bad.json'}: malformed record" in err and "nothing written" in err
    assert not (tmp_path / "out").exists()


def test_truncated_and_foreign_files_beside_good_records_are_skipped(tmp_path, trio, capsys):
    for rec in trio:
        write_record(rec, tmp_path / "results")
    good = next((tmp_path / "results").rglob("sft-*.json"))
    (good.parent / "sft-truncated.json").write_text(good.read_text()[:100])
    (tmp_path / "results" / "package.json").write_text('{"name": "not a record"}')
    assert main(["--results-dir", str(tmp_path / "results"), "--leaderboard-dir", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "sft-truncated.json: malformed record" in err and "package.json: malformed record" in err
    assert "from 3 records" in (tmp_path / "out" / "math.md").read_text()


def test_missing_results_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["--results-dir", str(tmp_path / "nope"), "--leaderboard-dir", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip() == f"error: --results-dir {tmp_path / 'nope'}: no results folder"


def test_pass_at_k_above_one_gets_its_own_table_and_only_when_recorded():
    from harness.leaderboard import render
    from harness.results import make_record

    def record(method, pass_at):
        score = {"role": "test", "value": 0.25, "stderr": 0.05, "n": 100, "samples_per_example": 10}
        hparams = {"objective": method, "lr": 1e-3} if method != "base" else {}
        return make_record(
            task="code-lists",
            domain="code",
            backbone="b",
            method=method,
            hparams=hparams,
            data={},
            scores={"test": score | pass_at},
            wall_time_s=1.0,
            run_dir=None,
        )

    page = render(
        [record("sft", {"pass_at": {"1": 0.25, "10": 0.6}}), record("dft", {"pass_at": {"1": 0.25}})]
    )
    assert "| model | test pass@10 |" in page["code"]
    assert "| SFT | 60.0 |" in page["code"] and "| DFT | – |" in page["code"]
    plain = render([record("sft", {"pass_at": {"1": 0.25}})])["code"]
    assert "pass@" not in plain


def test_a_task_scored_only_on_benchmarks_reads_like_the_papers_table():
    """NuminaMath-CoT trained, scored on the paper's five benchmarks (Average@16): one column per
    benchmark under the paper's names, then their average."""
    benchmarks = {"math-500": "Math500", "minerva-math": "Minerva Math", "olympiadbench": "Olympiad Bench",
                  "aime24": "AIME24", "amc23": "AMC23"}  # fmt: skip

    def record(method, values):
        scores = {
            name: {
                "role": "ood",
                "value": v,
                "stderr": 0.01,
                "n": 100,
                "samples_per_example": 16,
                "decoding": "temperature=1.0, top_p=1.0",
                "title": title,
            }  # fmt: skip
            for (name, title), v in zip(benchmarks.items(), values)
        }
        hparams = {} if method == "base" else {**HPARAMS, "objective": method, "seed": 0}
        return make_record(task="numina-math-cot", domain="math", backbone=BACKBONE, method=method,
                           hparams=hparams, data={}, scores=scores, wall_time_s=1.0, run_dir=None)  # fmt: skip

    page = render([record("base", [0.3, 0.1, 0.15, 0.0, 0.2]), record("sft", [0.5, 0.2, 0.2, 0.1, 0.3])])[
        "math"
    ]
    (header,) = lines(page, "| model | seeds |")
    assert header == "| model | seeds | Math500 | Minerva Math | Olympiad Bench | AIME24 | AMC23 | Avg. |"
    (sft,) = lines(page, "| SFT |")
    assert sft.split(" | ")[-1].startswith("**26.0 ±")  # (50 + 20 + 20 + 10 + 30) / 5
    assert "16 samples per example, temperature=1.0, top_p=1.0." in page
    # With an in-domain split beside them, the usual columns: names with their roles, "OOD mean".
    assert (
        "| gsm8k (test) | svamp (ood) | asdiv (ood) | OOD mean |"
        in render([run("sft", 0.5, 0.3, 0.35)])["math"]
    )


def test_the_headline_never_picks_a_run_on_wrong_answers(trio):
    from harness.report.index import index_page

    noisy = run("dft", 0.95, 0.9, 0.9, hparams={**HPARAMS, "objective": "dft", "train_noise": 0.4})
    [row] = lines(index_page([*trio, noisy], "results", [], [], []), "| [math](math.md)")
    assert "| 1 | 1 | 50.0 ± 3.5 | 60.0 ± 3.5 |" in row  # the clean DFT (60), not the noisy one (95)


def test_the_headline_never_picks_an_offline_run_and_its_table_says_whose_answers_it_trained_on(trio):
    from harness.report.index import index_page

    made = {"model": "tiny", "task": "math-words", "num_samples": 4, "temperature": 1.0, "questions": 512}
    made |= {"correct": 420, "pairs": 254}
    offline = run(
        "dft", 0.95, 0.9, 0.9, hparams={**HPARAMS, "objective": "dft", "train_data": "runs/selfgen/x"}
    )
    offline["data"]["selfgen"] = made
    [row] = lines(index_page([*trio, offline], "results", [], [], []), "| [math](math.md)")
    assert "| 1 | 1 | 50.0 ± 3.5 | 60.0 ± 3.5 |" in row  # the DFT on demonstrations (60), not the offline one
    page = render([*trio, offline])["math"]
    assert "· offline setting (trained on the backbone's own graded answers)" in page
    assert (
        "trained on `runs/selfgen/x` (self-generated: tiny's 4 answers at temperature 1.0 to 512 `math-words` "
        "training questions, 420 graded correct, 254 right/wrong pairs)" in page
    )


def test_the_data_line_says_which_rows_and_how_many_were_wrong():
    hparams = {**HPARAMS, "objective": "sft", "train_offset": 100, "train_limit": 50, "train_noise": 0.2}
    page = render([run("sft", 0.5, 0.3, 0.3, hparams=hparams)])["math"]
    assert (
        "the `math-words` train split (rows 101-150), 0.2 of them with a wrong answer (--train-noise)" in page
    )
