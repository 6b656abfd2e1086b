"""Records are never replaced silently, and a short run reproduces its committed record.

A rerun of a configuration reuses its finished record, a rerun evaluated otherwise stops before any
work, and only ``--redo`` replaces, printing which scores changed. Each record made is compared with
the reference record of its run: ``tests/pinned/reference/`` holds one short run made in the
locked environment (``constraints.txt``), the cheap check that the lock reproduces the numbers.
Regenerate it only when a change of the numbers is intended:
``HARNESS_UPDATE_PINNED=1 python -m pytest tests/test_records_kept.py``, and say why in the commit.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness import environment, identity, results
from harness.errors import ConfigError
from harness.experiment import main

PINNED = Path(__file__).parent / "pinned" / "reference"
# Short enough for the test suite, long enough that the scores are not all zero: 4 steps of 32,
# 8 examples of every split.
SHORT = [
    "--task", "math-words", "--methods", "sft", "--steps", "4", "--train-limit", "128",
    "--eval-limit", "8", "--prob-rows", "0", "--no-progress",
]  # fmt: skip
# Cheaper still, where only the bookkeeping is under test.
TINY = [
    "--task", "math-words", "--methods", "sft", "--steps", "2", "--train-limit", "16", "--batch-size", "8",
    "--eval-limit", "1", "--max-new-tokens", "8", "--prob-rows", "0", "--no-progress",
]  # fmt: skip


def run(
    tmp_path: Path, settings: list[str], results_dir: Path, *extra: str, reference: Path | str = ""
) -> int:
    folders = ["--runs-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "boards")]
    where = ["--results-dir", str(results_dir), "--reference-dir", str(reference)]
    return main([*settings, *folders, *where, *extra])


@pytest.mark.slow
def test_a_short_run_reproduces_its_committed_record(tmp_path, capsys):
    if os.environ.get("HARNESS_UPDATE_PINNED"):  # made beside, then moved: the run sees a clean tree
        assert run(tmp_path / "pin", SHORT, tmp_path / "pinned") == 0
        shutil.rmtree(PINNED, ignore_errors=True)
        shutil.copytree(tmp_path / "pinned", PINNED)
    (pinned,) = PINNED.rglob("*.json")
    assert any(score["value"] > 0 for score in results.read_record(pinned)["scores"].values())
    capsys.readouterr()
    assert run(tmp_path, SHORT, tmp_path / "results", reference=PINNED) == 0
    out = capsys.readouterr().out
    assert f"[sft seed 0] matches the reference {pinned}: every score is identical" in out, out


@pytest.mark.slow
def test_records_are_reused_compared_refused_or_redone_never_silently_replaced(tmp_path, capsys):
    made, reference = tmp_path / "results", tmp_path / "reference"
    assert run(tmp_path, TINY, made, "--seeds", "0", "1", reference=reference) == 0
    paths = sorted(made.rglob("*.json"))
    assert [p.name.rsplit("-", 1)[1] for p in paths] == ["seed0.json", "seed1.json"]
    first = {path: path.read_bytes() for path in paths}
    assert "| SFT | 2 |" in (tmp_path / "boards" / "math.md").read_text()
    assert capsys.readouterr().out.count("no reference record of this configuration") == 2

    # The same run again: reused, and compared with a reference where seed 1 scored otherwise.
    shutil.copytree(made, reference)
    changed = reference / paths[1].relative_to(made)
    record = json.loads(changed.read_text())
    record["scores"]["test"]["value"] = 0.5
    record["provenance"]["packages"]["transformers"] = "0.0.1"
    record["provenance"]["numerics"] |= {"mode": "native", "capability": "AVX512"}
    record["provenance"]["host"]["cpu"] = "Intel Xeon"
    changed.write_text(json.dumps(record))
    assert run(tmp_path, TINY, made, "--seeds", "0", "1", reference=reference) == 0
    captured = capsys.readouterr()
    assert captured.err.count("finished before, reused") == 2
    assert {path: path.read_bytes() for path in paths} == first
    assert "[sft seed 0] matches the reference" in captured.out
    ours, seed0 = (100 * results.read_record(p)["scores"]["test"]["value"] for p in (paths[1], paths[0]))
    # Each difference against the reference's seed-to-seed spread: here its seeds 0 and 1 (50.0).
    spread, key = abs(seed0 - 50.0), environment.of_record(results.read_record(paths[1]))["numerics"]
    where = "within" if abs(ours - 50.0) <= spread else "beyond"
    assert (
        f"[sft seed 1] differs from the reference {changed}: test 50.0 -> {ours:.1f} ({ours - 50.0:+.1f}:"
        f" {where} the {spread:.1f} between the reference's 2 seeds) (reference -> yours); what differs:"
        f" numerics native AVX512 on Intel Xeon -> {key}, transformers 0.0.1 -> "
    ) in captured.out, captured.out

    # Only a score differs: nothing known in the environment, so the line says so, and the commits.
    record = json.loads(changed.read_text())
    record["provenance"] = json.loads((made / paths[1].relative_to(made)).read_text())["provenance"]
    changed.write_text(json.dumps(record))
    assert run(tmp_path, TINY, made, "--seeds", "1", reference=reference) == 0
    out = capsys.readouterr().out
    assert "what differs" not in out
    assert f"; nothing known differs (same packages, numerics {key}); the same commit" in out, out

    # Evaluated otherwise: stopped before any work, nothing touched.
    assert run(tmp_path, TINY, made, "--seeds", "0", "1", "--eval-limit", "2") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {paths[0]} holds a record of this configuration that differs")
    assert "evaluation.limit 1 (now 2), " in err and "(and 1 more); --redo replaces it" in err
    assert len(err.splitlines()) == 1 and {path: path.read_bytes() for path in paths} == first

    assert run(tmp_path, TINY, made, "--seeds", "0", "--eval-limit", "2", "--redo") == 0
    err = capsys.readouterr().err
    assert f"[sft seed 0] --redo replaced {paths[0]}: " in err
    assert results.read_record(paths[0])["evaluation"]["limit"] == 2
    assert paths[1].read_bytes() == first[paths[1]]  # seed 1 was not asked for


@pytest.mark.parametrize(
    ("task", "extra"),
    [("math-words", []), ("code-lists", ["--eval-limit", "100"]), ("visual-math", ["--eval-limit", "200"])],
)
def test_todays_default_run_is_the_committed_references_run(task, extra):
    """Every setting added since the committed reference records were made (prompt templates, the
    benchmarks' sampling protocols) leaves the default run as it was: same file (config id), same
    configuration and evaluation, so ``nox -s train-*`` reuses and compares with those records."""
    from harness.experiment import parse_experiment
    from harness.plan import plan_method, replicates

    experiment = parse_experiment(["--task", task, "--seeds", "0", "1", "2", *extra])
    root = Path(__file__).resolve().parents[1] / "results"
    for seeded, method in replicates(experiment):
        planned = plan_method(seeded, method)
        reference = identity.record_path(planned.slot, root)
        assert reference.exists(), reference
        assert results.conflict(reference, planned.slot, planned.evaluation) is None, reference


@pytest.mark.slow
def test_a_base_record_made_before_the_deciding_strength_gains_it_and_nothing_else(tmp_path, capsys):
    settings = ["--task", "math-words", "--methods", "base", "--eval-limit", "1", "--max-new-tokens", "8",
                "--prob-rows", "4", "--no-progress"]  # fmt: skip
    assert run(tmp_path, settings, tmp_path / "results") == 0
    (path,) = (tmp_path / "results").rglob("base-*.json")
    made = json.loads(path.read_text())
    assert made["token_probs"]["deciding"]["tokens"] > 0
    older = {**made, "token_probs": {k: v for k, v in made["token_probs"].items() if k != "deciding"}}
    path.write_text(json.dumps(older))  # as a record made before the deciding strength existed
    capsys.readouterr()
    assert run(tmp_path, settings, tmp_path / "results") == 0
    assert "the deciding-token strength added" in capsys.readouterr().err
    upgraded = json.loads(path.read_text())
    assert upgraded["token_probs"] == made["token_probs"] and upgraded["scores"] == made["scores"]
    # A histogram that is not the one measured now (another model or numerics): left as it is.
    tampered = {**older, "token_probs": {**older["token_probs"], "mean": 0.5}}
    path.write_text(json.dumps(tampered))
    assert run(tmp_path, settings, tmp_path / "results") == 0
    assert "the deciding-token strength is left out" in capsys.readouterr().err
    assert json.loads(path.read_text()) == tampered


def rows_file(path: Path, answers_shift: int = 0) -> Path:
    """math-words' first 16 training rows as a rows file (``answers_shift`` edits its last row)."""
    from harness.data.rows import training_rows

    rows, _ = training_rows("math-words", None, 16)
    if answers_shift:
        rows[-1] = {
            **rows[-1],
            "completion": [{"role": "assistant", "content": f"\\boxed{{{answers_shift}}}"}],
        }
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.slow
def test_an_edited_training_file_is_another_run_never_the_finished_one_reused(tmp_path, capsys):
    data = rows_file(tmp_path / "rows.jsonl")
    settings = [s for s in TINY if s not in ("--task", "math-words")] + ["--train-data", str(data)]
    assert run(tmp_path, settings, tmp_path / "results") == 0
    (first,) = (tmp_path / "results").rglob("sft-*.json")
    made = json.loads(first.read_text())
    assert made["hparams"]["train_data_sha256"] == identity_digest(data)
    rows_file(data, answers_shift=7)  # the same path, other content
    capsys.readouterr()
    assert run(tmp_path, settings, tmp_path / "results") == 0
    err = capsys.readouterr().err
    assert "finished before, reused" not in err and "reusing the finished training" not in err
    records = sorted((tmp_path / "results").rglob("sft-*.json"))
    assert len(records) == 2 and json.loads(first.read_text()) == made  # the first kept as it was
    (second,) = [path for path in records if path != first]
    assert json.loads(second.read_text())["hparams"]["train_data_sha256"] == identity_digest(data)
    # The training folder of the first content is not the second's: resuming it is refused by name.
    from harness.checkpoint import load_state
    from harness.config import TrainConfig

    folder = tmp_path / "train"
    from harness.resolve import resolve_train

    config = resolve_train(TrainConfig(train_data=str(data), steps=2, batch_size=8, micro_batch_size=8,
                                       save_every=1, output_dir=str(folder), progress=False, max_length=256))  # fmt: skip
    from harness.trainer import train

    train(config)
    rows_file(data, answers_shift=8)
    with pytest.raises(
        ConfigError,
        match=r"--resume: .*checkpoint-1 was trained on other rows: --train-data .*rows.jsonl has changed since",
    ):
        load_state(config)


def identity_digest(path: Path) -> str:
    from tasks.sources import digest

    return digest(path)
