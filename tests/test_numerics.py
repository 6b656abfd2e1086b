"""Pinned numerics: the same training gives the same weights whatever instruction-set settings the
host would have its libraries use, and different weights natively; the host and the mode are
recorded, and a bad mode is one line.

The slow test plays each host level this CPU supports (``avx512``, ``avx2``, ``default``) the way a
CPU of that level has its libraries run: ATen's dispatch, MKL's instructions and oneDNN's JIT capped
at that level. Natively the two highest levels give different weights. Pinned, the settings are
replaced by the pins, so every level that reaches AVX2 gives one set of weights: what it shows is
that no setting a host or a shell brings survives pinning. It cannot show another vendor's MKL (that is why a record's
numerics name the vendor), and a real CPU without AVX2 is pinned at the baseline instead
(:func:`harness.numerics.pinned_settings`). It trains the embedded tiny VLM (text layers over MKL's
GEMM, a vision tower whose patch convolution goes through oneDNN natively) one step in a fresh
process per level and mode.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import subprocess
import sys

import pytest

from harness import environment, numerics, provenance

# What a CPU of each ATen level would have each library use: ATen's dispatch, MKL's instructions,
# oneDNN's JIT ceiling.
HOSTS = {
    "avx512": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512",
        "ONEDNN_MAX_CPU_ISA": "ALL",
    },
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    },
}
ORDER = ("avx512", "avx2", "default")
SHORT = ["--task", "visual-math", "--model", "tiny-vl", "--objective", "sft", "--preset", "laptop",
         "--steps", "1", "--warmup-ratio", "0", "--batch-size", "4", "--train-limit", "4", "--max-length", "256",
         "--no-progress"]  # fmt: skip


def supported_levels() -> list[str]:
    level = numerics.host_level()
    return [] if level is None else list(ORDER[ORDER.index(level) :])


def trained_weights(folder, mode: str, level: str) -> str:
    """Train :data:`SHORT` in a fresh process as a host of ``level`` would, in ``mode``; the
    weights' sha256."""
    env = {k: v for k, v in os.environ.items() if k not in numerics.LIBRARY_VARIABLES}
    env |= HOSTS[level] | {numerics.ENV: mode, "OMP_NUM_THREADS": "1"}  # two runs at once on 2 cores
    out = folder / f"{mode}-{level}"
    command = [sys.executable, "-m", "harness.train", *SHORT, "--output-dir", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return hashlib.sha256((out / "model" / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(
    len(supported_levels()) < 2, reason="needs an x86-64 CPU with AVX2 (two levels to compare)"
)
def test_pinned_training_gives_the_same_weights_on_every_level_and_native_does_not(tmp_path):
    levels = supported_levels()
    reaching_avx2 = [level for level in levels if numerics.pinned_level(level) == numerics.PINNED_LEVEL]
    # Natively, the two highest levels (on an AVX-512 host the two that pinning makes one): a third
    # would cost a third wave of processes and show nothing more about pinning.
    natives = levels[:2]
    runs = [("pinned", level) for level in reaching_avx2] + [("native", level) for level in natives]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        hashes = dict(zip(runs, pool.map(lambda run: trained_weights(tmp_path, *run), runs)))
    pinned = {hashes["pinned", level] for level in reaching_avx2}
    native = [hashes["native", level] for level in natives]
    assert len(pinned) == 1, hashes
    assert len(set(native)) == len(natives), hashes  # each level its own last bits: what pinning removes
    assert numerics.pinned_settings("default") != numerics.pinned_settings(levels[0])


def test_pinning_replaces_the_shells_variables_and_native_leaves_them():
    shell = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "AVX512", "PATH": "/bin"}
    pinned = dict(shell)
    numerics.pin_before_torch(pinned)
    if numerics.host_level() in ("avx512", "avx2"):
        assert pinned == {
            "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_CBWR": "AVX2,STRICT",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "PATH": "/bin",
        }
    native = {**shell, numerics.ENV: "native"}
    numerics.pin_before_torch(native)
    assert native == {**shell, numerics.ENV: "native"}
    broken = {**shell, numerics.ENV: "fastest"}  # reported later, as one line (pin_torch)
    numerics.pin_before_torch(broken)
    assert broken == {**shell, numerics.ENV: "fastest"}


@pytest.mark.skipif(numerics.mode() != "pinned", reason="HARNESS_NUMERICS=native (nox -s tests pins)")
def test_this_process_is_pinned_and_its_record_says_so():
    import torch

    numerics.pin_torch()
    if numerics.host_level() in ("avx512", "avx2"):
        assert torch.backends.cpu.get_cpu_capability() == "AVX2"
        assert numerics.current_key("cpu").startswith("pinned AVX2")
    assert not torch.backends.mkldnn.enabled
    origin = provenance.provenance("cpu")
    assert origin["numerics"]["mode"] == "pinned" and origin["device"] == "cpu"
    assert origin["host"]["isa"] == numerics.host_level() and origin["host"]["threads"] >= 1
    assert environment.of_record({"provenance": origin})["numerics"] == numerics.current_key("cpu")


def test_a_bad_mode_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv(numerics.ENV, "fastest")
    with pytest.raises(
        numerics.NumericsError, match=r"^HARNESS_NUMERICS=fastest: expected pinned or native$"
    ):
        numerics.pin_torch()


def test_cpu_flags_and_keys():
    assert numerics.host_level({"avx", "avx2"}) == "default"  # ATen's AVX2 needs FMA too
    assert numerics.host_level({"avx2", "fma", "avx512f"}) == "avx2"  # and its AVX-512 needs BW, VL, DQ
    on_arm = numerics.key({"mode": "pinned", "device": "cpu", "capability": "DEFAULT"}, {"arch": "aarch64"})
    assert on_arm == "pinned DEFAULT (aarch64)"
