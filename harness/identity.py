"""A record's identity: which configuration it is, which variant of which method, and where its file
goes.

:func:`config_id` hashes the hyperparameters *without* the objective fields and the seed, so the SFT
and DFT runs of one configuration share it (that is how the leaderboard pairs them) and so do its
replicates (the leaderboard averages them). :func:`variant` is the method, plus the objective
settings that differ from its paper's (``dft``, ``dft-floor0.1``, ``eaft-k5``), so variants of one
configuration sit side by side. Layout of a results folder (:func:`record_path`):
``<results>/<task>/<backbone-slug>/<variant>-<config_id>-seed<seed>.json``.

>>> config_id({"lr": 1e-5, "objective": "sft", "seed": 0}) == config_id({"objective": "dft", "lr": 1e-5, "seed": 1})
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from harness.config import LATER_DEFAULTS, OBJECTIVE_KEYS, OBJECTIVE_PARAMS, REPLICATE_KEYS


def distinctive(hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` less the later-added settings (:data:`harness.config.LATER_DEFAULTS`) at the
    value every older record had: what the config id hashes and the pages show.

    >>> distinctive({"lr": 1e-3, "prompt_template": "chat"}), distinctive({"prompt_template": "qwen-boxed"})
    ({'lr': 0.001}, {'prompt_template': 'qwen-boxed'})
    """
    return {
        key: value
        for key, value in hparams.items()
        if key not in LATER_DEFAULTS or LATER_DEFAULTS[key] != value
    }


def config_id(hparams: dict[str, Any]) -> str:
    """Short stable hash of ``hparams`` without the objective fields and the seed (key order does
    not matter): the methods and the replicates of one configuration share it. A setting added later
    (:data:`harness.config.LATER_DEFAULTS`) counts only away from the value older records had.

    >>> config_id({"lr": 1e-5, "objective": "sft", "seed": 0}) == config_id({"objective": "dft", "lr": 1e-5, "seed": 1})
    True
    >>> config_id({"lr": 1e-5}) == config_id({"lr": 1e-5, "prompt_template": "chat"}) != config_id(
    ...     {"lr": 1e-5, "prompt_template": "qwen-boxed"})
    True
    """
    shared = {
        key: value
        for key, value in distinctive(hparams).items()
        if key not in OBJECTIVE_KEYS | REPLICATE_KEYS
    }
    canonical = json.dumps(shared, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def backbone_slug(backbone: str) -> str:
    """A folder name for a model id or path: ``Qwen/Qwen2.5-0.5B`` -> ``Qwen--Qwen2.5-0.5B``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", backbone.strip("/").replace("/", "--")).strip(".")


def variant_settings(method: str, hparams: dict[str, Any]) -> list[tuple[str, float]]:
    """The parameters of a run's objective that differ from its paper's, as ``(short name, value)``
    (a parameter the objective does not read is not its own, whatever its value).

    >>> variant_settings("dft", {"dft_min_weight": 0.1, "dft_alpha": 1.0, "q": 2.0})
    [('floor', 0.1)]
    >>> variant_settings("q-family", {"q": 0.5}), variant_settings("sft", {"q": 0.5})
    ([('q', 0.5)], [])
    """
    return [
        (param.short, hparams[key])
        for key, param in OBJECTIVE_PARAMS.items()
        if method in param.owners and hparams.get(key, param.default) != param.default
    ]


def variant(method: str, hparams: dict[str, Any]) -> str:
    """The method, with the DFT settings that differ from the paper's appended.

    >>> variant("dft", {"dft_min_weight": 0.0, "dft_alpha": 1.0}), variant("sft", {})
    ('dft', 'sft')
    >>> variant("dft", {"dft_min_weight": 0.1, "dft_alpha": 0.5}), variant("eaft", {"eaft_top_k": 5})
    ('dft-floor0.1-alpha0.5', 'eaft-k5')
    """
    return "-".join([method, *(f"{short}{value:g}" for short, value in variant_settings(method, hparams))])


def record_path(record: dict[str, Any], results_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`harness.results.write_record` puts ``record`` under ``results_dir``: one file per variant,
    configuration and seed.

    >>> record_path({"task": "t", "backbone": "b", "method": "sft", "hparams": {"seed": 2}}, "r").as_posix()
    'r/t/b/sft-44136fa3-seed2.json'
    """
    hparams = record["hparams"]
    replicate = "".join(f"-{key}{hparams[key]}" for key in sorted(REPLICATE_KEYS) if key in hparams)
    name = f"{variant(record['method'], hparams)}-{config_id(hparams)}{replicate}.json"
    return Path(results_dir) / record["task"] / backbone_slug(record["backbone"]) / name


def seed_of(record: dict[str, Any]) -> int | None:
    """The seed a trained record's run used (None for a base record)."""
    return record["hparams"].get("seed")
