"""Run records: validation, config ids, atomic writes and loading."""

from __future__ import annotations

import json
import os

import pytest

from harness import environment, identity, provenance, results
from harness.identity import config_id
from harness.results import load_records, make_record, write_record

HPARAMS = {"lr": 1e-5, "batch_size": 8, "epochs": 1, "max_len": 1024, "seed": 0}
FIXED_PROVENANCE = {"commit": "0" * 40, "dirty": False, "packages": {}, "python": "3.11", "device": "cpu"}


@pytest.fixture(autouse=True)
def fixed_provenance(monkeypatch):
    """No git or torch per record: these tests are about the record, provenance has its own."""
    monkeypatch.setattr(results, "provenance", lambda device=None: dict(FIXED_PROVENANCE))


def score(value=0.415, role="test", **extra):
    return {"role": role, "value": value, "stderr": 0.035, "n": 200, "samples_per_example": 1, **extra}


def record(method="sft", hparams=None, value=0.415, **overrides):
    if hparams is None:
        hparams = {} if method == "base" else {**HPARAMS, "objective": method}
    fields = {
        "task": "math-words",
        "domain": "math",
        "backbone": "Qwen/Qwen2.5-0.5B-Instruct",
        "method": method,
        "hparams": hparams,
        "data": {"train_examples": 2000, "dropped_overlong": 0},
        "scores": {"gsm8k": score(value), "svamp": score(0.3, role="ood")},
        "wall_time_s": 812.0,
        "run_dir": "runs/x",
    }
    return make_record(**{**fields, **overrides})


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_round_trip_and_layout(tmp_path):
    rec = record("dft", hparams={**HPARAMS, "objective": "dft", "dft_alpha": 0.5})
    path = write_record(rec, tmp_path)
    assert path.relative_to(tmp_path).as_posix() == (
        f"math-words/Qwen--Qwen2.5-0.5B-Instruct/dft-alpha0.5-{config_id(HPARAMS)}-seed0.json"
    )
    assert load_records(tmp_path) == [rec]
    assert list(load_records(tmp_path)[0]["scores"]) == ["gsm8k", "svamp"]  # column order survives


def test_a_scores_generation_settings_are_kept(tmp_path):
    # Every setting the completions were made with (harness.generate.generation_settings) survives
    # the record's checks and a round trip: the paper-beside page compares them with the paper's.
    settings = {"temperature": 1.0, "top_p": 1.0, "top_k": None, "num_samples": 16, "max_new_tokens": 4096}
    rec = record(scores={"gsm8k": score(generation=settings)})
    write_record(rec, tmp_path)
    assert load_records(tmp_path)[0]["scores"]["gsm8k"]["generation"] == settings


def test_rerun_overwrites_its_own_record(tmp_path):
    write_record(record("sft", value=0.4), tmp_path)
    write_record(record("sft", value=0.5), tmp_path)
    write_record(record("dft", value=0.6), tmp_path)
    loaded = load_records(tmp_path)
    assert [(r["method"], r["scores"]["gsm8k"]["value"]) for r in loaded] == [("dft", 0.6), ("sft", 0.5)]


def test_dft_variants_of_one_config_get_their_own_files(tmp_path):
    paper = {**HPARAMS, "objective": "dft", "dft_min_weight": 0.0, "dft_alpha": 1.0}
    names = {
        write_record(record("dft", hparams={**paper, **change}), tmp_path).name
        for change in [{}, {"dft_min_weight": 0.1}, {"dft_alpha": 0.5}, {"dft_min_weight": 1e-5}]
    }
    cid = config_id(HPARAMS)
    assert names == {
        f"dft-{cid}-seed0.json",
        f"dft-floor0.1-{cid}-seed0.json",
        f"dft-alpha0.5-{cid}-seed0.json",
        f"dft-floor1e-05-{cid}-seed0.json",
    }
    assert len(load_records(tmp_path)) == 4


def test_dft_settings_must_be_numbers():
    with pytest.raises(ValueError, match="dft_min_weight must be a number, got '0.1'"):
        record("dft", hparams={**HPARAMS, "objective": "dft", "dft_min_weight": "0.1"})


def test_config_id_shared_by_sft_and_dft_and_sensitive_to_the_rest():
    sft = {**HPARAMS, "objective": "sft"}
    dft = {"objective": "dft", "dft_min_weight": 0.1, "dft_alpha": 0.5, **HPARAMS}
    assert config_id(sft) == config_id(dft) == config_id(dict(reversed(list(HPARAMS.items()))))
    assert config_id({**sft, "lr": 2e-5}) != config_id(sft)


def test_the_seeds_of_one_config_share_its_id_and_get_their_own_files(tmp_path):
    sft = {**HPARAMS, "objective": "sft"}
    assert config_id({**sft, "seed": 1}) == config_id(sft)
    paths = [write_record(record("sft", hparams={**sft, "seed": seed}), tmp_path) for seed in (0, 1, 2)]
    assert [p.name for p in paths] == [f"sft-{config_id(sft)}-seed{seed}.json" for seed in (0, 1, 2)]
    assert [identity.seed_of(r) for r in load_records(tmp_path)] == [0, 1, 2]


def test_config_id_is_stable_across_processes():
    # Pinned: a change renames every record on disk, so it must be deliberate.
    assert config_id({"lr": 1e-5, "batch_size": 8, "epochs": 1, "objective": "dft"}) == "06911126"


def test_bad_method_names_the_valid_ones():
    with pytest.raises(
        ValueError,
        match="unknown method 'grpo'; valid methods: base, sft, dft, q-family, profit, chord-phi, gft, eaft, asft, psft, iw-sft, dpo",
    ):
        record("grpo", hparams=dict(HPARAMS))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"method": "base", "hparams": {"lr": 1e-5}}, "base record has no training hyperparameters"),
        ({"method": "sft", "hparams": {}}, "needs its training hyperparameters"),
        ({"method": "sft", "hparams": {**HPARAMS, "objective": "dft"}}, "objective 'dft'"),
        ({"scores": {"gsm8k": score(41.5)}}, r"fraction in \[0, 1\]"),  # a percentage, not a fraction
        ({"scores": {"gsm8k": score(role="train")}}, "valid roles: test, ood"),
        ({"scores": {"gsm8k": {**score(), "n": 0}}}, "n must be a positive integer"),
        ({"scores": {"gsm8k": {**score(), "accuracy": 1}}}, "unknown"),
        ({"scores": {"gsm8k": score(generation="greedy")}}, "generation must be an object of settings"),
        ({"task": "../escape"}, "task '../escape'"),
    ],
)
def test_make_record_rejects_inconsistent_records(overrides, message):
    with pytest.raises(ValueError, match=message):
        record(**overrides)


def test_make_record_normalizes_numbers():
    rec = record(scores={"gsm8k": score(1)})
    assert rec["scores"]["gsm8k"]["value"] == 1.0 and isinstance(rec["scores"]["gsm8k"]["value"], float)


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_keeps_the_old_record_and_leaves_no_temp_file(tmp_path, monkeypatch, failing):
    path = write_record(record("sft", value=0.4), tmp_path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(f"simulated {failing} failure")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="simulated"):
        write_record(record("sft", value=0.9), tmp_path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert files_under(tmp_path) == [path.relative_to(tmp_path).as_posix()]


def test_unserializable_record_writes_nothing(tmp_path):
    rec = record("sft")
    rec["hparams"]["schedule"] = object()
    with pytest.raises(TypeError):
        write_record(rec, tmp_path)
    assert files_under(tmp_path) == []


def test_malformed_json_names_the_file(tmp_path):
    write_record(record("sft"), tmp_path)
    bad = tmp_path / "math-words" / "broken.json"
    bad.write_text('{"schema": 1,', encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_records(tmp_path)
    message = str(caught.value)
    assert str(bad) in message and "\n" not in message


def test_record_missing_keys_names_the_file(tmp_path):
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"schema": 1, "method": "sft"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"old\.json: malformed record: record is missing keys: task"):
        load_records(tmp_path)


def test_load_order_is_by_path_not_by_creation(tmp_path):
    for task in ["zeta", "alpha", "mid"]:
        write_record(record("dft", task=task), tmp_path)
        write_record(record("base", task=task), tmp_path)
    assert [(r["task"], r["method"]) for r in load_records(tmp_path)] == [
        (task, method) for task in ["alpha", "mid", "zeta"] for method in ["base", "dft"]
    ]


def test_missing_results_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results folder"):
        load_records(tmp_path / "nope")


def test_provenance_outside_a_repo_and_without_git(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real provenance, not the fixture's
    monkeypatch.setattr(provenance, "_SOURCE_DIR", tmp_path)
    info = provenance.provenance()
    assert info["commit"] is None and info["dirty"] is False
    assert set(info["packages"]) == set(environment.PACKAGES) >= {"torch", "transformers", "math-verify"}
    assert info["lock"] is None  # no constraints.txt beside this copy of the code
    assert info["packages"]["torch"]  # installed in this environment
    assert info["device"] == "cpu" or "x " in info["device"]
    assert info["date"].endswith("+00:00")

    monkeypatch.setenv("PATH", str(tmp_path))  # no git binary to be found
    assert provenance._git_state(tmp_path) == (None, False)


CURVE = [{"step": 0, "split": "gsm8k", "role": "test", "value": 0.1, "stderr": 0.02, "n": 50}]
HISTOGRAM = {"edges": [0.0, 0.5, 1.0], "counts": [3, 9], "tokens": 12, "mean": 0.7, "rows": 2}


def test_optional_keys_round_trip_and_none_is_left_out(tmp_path):
    rec = record(evaluation={"limit": 50}, curve=CURVE, token_probs=HISTOGRAM)
    assert load_records(tmp_path) == [] and write_record(rec, tmp_path)
    assert load_records(tmp_path)[0]["curve"] == CURVE
    assert "curve" not in record(curve=None)


@pytest.mark.parametrize(
    ("optional", "message"),
    [
        ({"curves": CURVE}, "unknown record keys \\['curves'\\]"),
        ({"curve": [{"step": 1, "split": "gsm8k"}]}, "needs step, split, value and stderr"),
        ({"curve": [{**CURVE[0], "step": -1}]}, "count of steps"),
        ({"curve": [{**CURVE[0], "value": 41.5}]}, "fraction in \\[0, 1\\]"),
        ({"token_probs": {**HISTOGRAM, "counts": [3]}}, "one more than counts"),
        ({"token_probs": {**HISTOGRAM, "counts": [3, -1]}}, "non-negative integer counts"),
        ({"evaluation": "greedy"}, "evaluation must be an object"),
    ],
)
def test_malformed_optional_keys_are_refused(optional, message):
    with pytest.raises(ValueError, match=message):
        record(**optional)


def test_finished_matches_by_content_not_by_name(tmp_path):
    rec = record(evaluation={"limit": 50, "ood_tasks": ["humaneval"]})
    path = write_record(rec, tmp_path)
    slot = {key: rec[key] for key in ("task", "backbone", "method", "hparams")}
    evaluation = {"limit": 50, "ood_tasks": ("humaneval",)}  # a tuple reads back as a list
    assert results.finished(path, slot, evaluation)
    assert not results.finished(path, slot, {**evaluation, "limit": 100})
    assert not results.finished(
        path, {**slot, "hparams": {**HPARAMS, "objective": "sft", "seed": 1}}, evaluation
    )
    assert not results.finished(tmp_path / "missing.json", slot, evaluation)
    assert results.conflict(path, slot, {**evaluation, "limit": 100}) == "evaluation.limit 50 (now 100)"
    path.write_text(path.read_text()[:80])  # truncated: not finished, and the conflict says why
    assert not results.finished(path, slot, evaluation)
    assert results.conflict(path, slot, evaluation).startswith("malformed record: ")


@pytest.mark.slow
def test_a_held_lock_is_seen_by_other_processes_and_dies_with_its_holder(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "t" / "b" / "sft-0.json"
    probe = [sys.executable, "-c", f"from harness import results; print(results.is_locked({str(target)!r}))"]
    assert not results.is_locked(target) and not (tmp_path / "t").exists()  # checking creates nothing
    with results.record_lock(target) as held:
        assert held
        assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "True"
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "False"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from harness import results; import time\nwith results.record_lock({str(target)!r}):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held" and results.is_locked(target)
    holder.kill()
    holder.wait()
    assert not results.is_locked(target)  # the kernel released it: no stale lock


def test_dirty_describes_the_code_not_the_output_folders(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    for path in ("harness/code.py", "results/t/b/sft.json", "leaderboards/math.md", "runs/x.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("one\n")
    git("add", "-A", "-f")
    git("commit", "-qm", "one")
    for path in ("results/t/b/sft.json", "leaderboards/math.md", "runs/x.txt"):
        (tmp_path / path).write_text("rewritten by a run\n")
    commit, dirty = provenance._git_state(tmp_path / "harness")
    assert len(commit) == 40 and dirty is False
    (tmp_path / "harness" / "code.py").write_text("two\n")
    assert provenance._git_state(tmp_path / "harness")[1] is True
