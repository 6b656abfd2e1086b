"""Pinned CPU numerics: the same training bits on every x86-64 host, and the host in every record.

A CPU's instruction set moves the last bits of a sum: torch's ATen picks its AVX-512, AVX2 or
baseline kernels by what the CPU has, MKL its GEMM code path by the CPU's vendor and level, and
oneDNN (torch's convolutions) its JIT kernels by the same. 124 training steps turn that last bit into
points of accuracy, so a reference made on one host type did not reproduce on another. Pinned
numerics set every one of them to a level that every x86-64 host of the last decade has, AVX2,
before torch is imported (``harness/__init__.py`` calls :func:`pin_before_torch`):

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's vectorized kernels (softmax, exp, reductions, attention);
- ``MKL_CBWR=AVX2,STRICT``: MKL's conditional numerical reproducibility, documented as one AVX2
  code path on every Intel CPU that has AVX2 (on other vendors MKL takes its automatic branch, so a
  record's numerics name the vendor: see :func:`key`), and GEMMs whose bits do not depend on the
  thread count;
- ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's JIT level, should anything still reach it;
- and once torch is loaded (:func:`pin_torch`, from :func:`harness.models.load_model`), torch's
  oneDNN and NNPACK paths off: convolutions take ATen's own kernels over MKL's GEMM, whose results
  ``MKL_CBWR`` fixes (oneDNN's JIT also blocks by the CPU's cache sizes, which no variable pins).

Measured on an AMD EPYC with AVX-512 (12 steps of SFT on the embedded tiny models, weight hashes):
ATen's three levels give three models natively; pinned, the text model is the same whatever
``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS`` or ``OMP_NUM_THREADS`` (1 to 16) the host would
use, and the vision model the same whatever ``ONEDNN_MAX_CPU_ISA`` (``tests/test_numerics.py``).
``MKL_CBWR=COMPATIBLE``, the one branch MKL documents as equal across vendors, changed the bits and
cost 40% more training time there (35 s against 23 to 25 s for the 12 steps).

``HARNESS_NUMERICS`` chooses: ``pinned`` (the default: every record is a reproduction on any
x86-64 host with AVX2) or ``native`` (each library's fastest path for this CPU, and the variables
the user set left alone). The nox sessions that make or compare with the reference set ``pinned``
whatever the shell says. A CUDA run is not pinned by this: its record names the GPU, and runs on
different GPUs are replicates, not reproductions.

A record keeps :func:`host` and :func:`state` in its provenance; :func:`key` reduces them to what
moves the bits (``pinned AVX2 on AMD``, ``native AVX512 on AMD EPYC``, ``cuda NVIDIA H200``), which the
pages group by and the reference comparison names.

>>> key({"mode": "pinned", "device": "cpu", "capability": "AVX2"}, {"arch": "x86_64", "vendor": "AuthenticAMD"})
'pinned AVX2 on AMD'
>>> key({"mode": "native", "device": "cpu", "capability": "AVX512"}, {"arch": "x86_64", "cpu": "AMD EPYC"})
'native AVX512 on AMD EPYC'
>>> key({"mode": "pinned", "device": "cuda"}, {"gpu": {"name": "NVIDIA H200"}})
'cuda NVIDIA H200'
>>> pinned_settings("avx512")["ATEN_CPU_CAPABILITY"], pinned_settings("default")["MKL_CBWR"]
('avx2', 'COMPATIBLE')
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import cache
from typing import Any

from harness.errors import ConfigError

ENV = "HARNESS_NUMERICS"
MODES = ("pinned", "native")
DEFAULT_MODE = "pinned"
PINNED_LEVEL = "avx2"  # Haswell (2013), Excavator (2015) and every x86-64 server CPU since
# The variables each library reads once, at its first call: what pinning sets and a record shows.
LIBRARY_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
# Per level of :func:`host_level`: ATen's name, MKL's reproducible code path, oneDNN's ceiling.
_LEVELS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
# What ATen needs of a CPU for each of its levels (cpuinfo's checks, as /proc/cpuinfo spells them).
_AVX512_FLAGS = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
_AVX2_FLAGS = {"avx2", "fma"}
NOT_RECORDED = "not recorded"  # the numerics of a record made before hosts were recorded


class NumericsError(ConfigError):
    """``HARNESS_NUMERICS`` is not a mode, or pinning could not take effect."""


def mode(environ: dict[str, str] | None = None) -> str:
    """The mode ``HARNESS_NUMERICS`` asks for (``pinned`` when unset); anything else is an error.

    >>> mode({}), mode({"HARNESS_NUMERICS": "native"})
    ('pinned', 'native')
    >>> mode({"HARNESS_NUMERICS": "fast"})
    Traceback (most recent call last):
    ...
    harness.numerics.NumericsError: HARNESS_NUMERICS=fast: expected pinned or native
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get(ENV, "").strip() or DEFAULT_MODE
    if chosen not in MODES:
        raise NumericsError(f"{ENV}={chosen}: expected {' or '.join(MODES)}")
    return chosen


@cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (Linux), or nothing elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip()] = value.strip()
    return fields


def host_level(flags: set[str] | None = None) -> str | None:
    """The highest of ATen's x86 levels this CPU has (``avx512``, ``avx2``, ``default``), from its
    flags; None where they cannot be read (not Linux, or not x86-64).

    >>> host_level({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"}), host_level({"avx2", "fma"})
    ('avx512', 'avx2')
    >>> host_level({"sse4_2", "avx"})
    'default'
    """
    if flags is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return None
        flags = set(_cpuinfo().get("flags", "").split())
        if not flags:
            return None
    if _AVX512_FLAGS <= flags:
        return "avx512"
    return "avx2" if _AVX2_FLAGS <= flags else "default"


def pinned_level(level: str | None) -> str | None:
    """The level pinned runs use on a host of ``level``: AVX2, or the baseline on an x86-64 CPU
    without it (which then cannot reproduce AVX2 records); None off x86-64 (nothing to pin).

    >>> pinned_level("avx512"), pinned_level("avx2"), pinned_level("default"), pinned_level(None)
    ('avx2', 'avx2', 'default', None)
    """
    if level is None:
        return None
    return PINNED_LEVEL if level in ("avx512", "avx2") else "default"


def pinned_settings(level: str | None) -> dict[str, str]:
    """The environment variables pinning sets on a host of ``level`` (:func:`host_level`)."""
    pinned = pinned_level(level)
    return dict(_LEVELS[pinned]) if pinned else {}


def pin_before_torch(environ: dict[str, str] | None = None) -> None:
    """In pinned mode, set the libraries' variables (:func:`pinned_settings`), replacing any the
    shell set, and drop ``MKL_ENABLE_INSTRUCTIONS`` (CBWR decides); in native mode touch nothing.
    Called by ``harness/__init__.py``, so before torch whenever a harness module is the entry point.
    A bad ``HARNESS_NUMERICS`` is left for :func:`pin_torch` to report, where an error can be
    shown as one line."""
    environ = os.environ if environ is None else environ
    try:
        if mode(environ) != "pinned":
            return
    except NumericsError:
        return
    environ.update(pinned_settings(host_level()))
    environ.pop("MKL_ENABLE_INSTRUCTIONS", None)


def pin_torch() -> None:
    """Once torch is loaded, before the first model runs: in pinned mode, torch's oneDNN and NNPACK
    paths off, and a check that ATen runs at the pinned level (it does not when torch was imported
    before any harness module and ran a kernel already). Idempotent; cheap."""
    import torch

    if mode() != "pinned":
        return
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    wanted = pinned_level(host_level())
    capability = torch.backends.cpu.get_cpu_capability()
    if wanted is not None and capability.lower() != wanted:
        raise NumericsError(
            f"{ENV}=pinned needs ATen at {wanted.upper()}, but it runs {capability}: torch was imported "
            f"and used before harness; import harness first, or set {ENV}=native"
        )


def host() -> dict[str, Any]:
    """The machine: CPU model, architecture, its ATen level (:func:`host_level`), torch's thread
    count, and the GPUs when CUDA is available (name, count, CUDA and driver versions)."""
    import torch

    gpu = None
    if torch.cuda.is_available():
        gpu = {
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
            "driver": _driver(),
        }
    return {
        "cpu": _cpuinfo().get("model name") or platform.processor() or None,
        "vendor": _cpuinfo().get("vendor_id"),
        "arch": platform.machine(),
        "isa": host_level(),
        "threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def _driver() -> str | None:
    """The NVIDIA driver's version, as nvidia-smi reports it (None without it)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    command = [smi, "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    return lines[0] if done.returncode == 0 and lines else None


def device_kind(device: str | None) -> str:
    """``cuda`` or ``cpu``: where a run with ``--device device`` computes (None: CUDA if present)."""
    if device is None:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if str(device).startswith("cuda") else "cpu"


def state(device: str | None = None) -> dict[str, Any]:
    """How this process computes on ``device`` (:func:`device_kind`): the mode, ATen's level as torch
    reports it, the libraries' variables as set, and whether torch's oneDNN and NNPACK paths are on."""
    import torch

    return {
        "mode": mode(),
        "device": device_kind(device),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "variables": {name: os.environ[name] for name in LIBRARY_VARIABLES if name in os.environ},
        "mkldnn": torch.backends.mkldnn.enabled,
        "nnpack": torch._C._get_nnpack_enabled(),  # no public getter
    }


def key(numerics: dict[str, Any] | None, machine: dict[str, Any] | None) -> str:
    """What moves a run's bits, in a few words: on a GPU its name; on a CPU pinned, the pinned level
    and the CPU's vendor (MKL documents ``MKL_CBWR=AVX2`` as one result on every Intel CPU with AVX2,
    but on other vendors it takes its automatic branch: an AMD and an Intel host are not claimed
    equal until a run shows it), and the architecture off x86-64; native, the level and the CPU
    model (MKL and oneDNN pick by vendor and cache sizes too). ``not recorded`` for a record made
    before hosts were recorded.

    >>> key(None, None), key("pinned", None)
    ('not recorded', 'not recorded')
    >>> key({"mode": "pinned", "device": "cpu", "capability": "AVX2"}, {"cpu": "Intel(R) Xeon(R) Gold 6338"})
    'pinned AVX2 on Intel'
    """
    if not isinstance(numerics, dict) or not numerics:  # absent, or a hand-edited record's junk
        return NOT_RECORDED
    machine = machine if isinstance(machine, dict) else {}
    if numerics.get("device") == "cuda":
        return f"cuda {(machine.get('gpu') or {}).get('name')}"
    arch = machine.get("arch") or "x86_64"
    where = "" if arch.lower() in ("x86_64", "amd64") else f" ({arch})"
    if numerics.get("mode") == "pinned":
        vendor = cpu_vendor(machine)
        return f"pinned {numerics.get('capability')}" + (f" on {vendor}" if vendor else "") + where
    return f"native {numerics.get('capability')} on {machine.get('cpu')}{where}"


_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


def cpu_vendor(machine: dict[str, Any]) -> str | None:
    """``AMD``, ``Intel``, another vendor's own id, or None: from the recorded vendor id, else (a
    record made before vendors were recorded) from the CPU's model name.

    >>> cpu_vendor({"vendor": "AuthenticAMD"}), cpu_vendor({"cpu": "AMD EPYC"}), cpu_vendor({"cpu": "?"})
    ('AMD', 'AMD', None)
    """
    vendor = machine.get("vendor")  # machine: a dict (key() checked)
    if vendor:
        return _VENDORS.get(vendor, vendor)
    name = str(machine.get("cpu") or "")
    return next((short for short in ("AMD", "Intel") if short in name), None)


def current_key(device: str | None = None) -> str:
    """:func:`key` of this process computing on ``device``."""
    return key(state(device), host())


def describe_difference(reference: str, yours: str) -> str | None:
    """The difference of two :func:`key` values in words, or None when they agree.

    >>> describe_difference("native AVX512 on AMD EPYC", "pinned AVX2 on AMD")
    'numerics native AVX512 on AMD EPYC -> pinned AVX2 on AMD'
    >>> describe_difference("not recorded", "pinned AVX2 on AMD")
    'numerics not recorded -> pinned AVX2 on AMD'
    >>> describe_difference("pinned AVX2 on AMD", "pinned AVX2 on AMD") is None
    True
    """
    if reference == yours:
        return None
    return f"numerics {reference} -> {yours}"
