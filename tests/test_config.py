"""The config package: every setting declared once with its role, and everything derived from the
roles; the presets; the flag builder; the one resolve step (domain defaults, checks, batch split)."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from harness import config as settings
from harness.ablate import SweepConfig, parse_sweep
from harness.config import (
    HPARAM_KEYS,
    LATER_DEFAULTS,
    OBJECTIVE_KEYS,
    OBJECTIVE_PARAMS,
    PER_METHOD,
    PRESETS,
    SWEEP_AXES,
    Sampling,
    TrainConfig,
    add_arguments,
    split_batch,
    to_flags,
)
from harness.errors import ConfigError
from harness.evaluate import EvalConfig, parse_evaluate
from harness.experiment import parse_experiment
from harness.identity import config_id
from harness.resolve import parse_train, resolve_train
from harness.trainer import train


def test_every_field_declares_a_known_role_and_help():
    for cls in (TrainConfig, Sampling, settings.ExperimentConfig, EvalConfig, SweepConfig):
        for f in fields(cls):
            assert f.metadata.get("role") in (settings.HPARAM, settings.OBJECTIVE, settings.RUN), (
                cls,
                f.name,
            )
            assert f.metadata.get("help"), (cls, f.name)


def test_the_lists_are_derived_from_the_roles():
    # What a record keeps, what resume checks, what the config id leaves out, what a sweep varies:
    # one declaration per field decides all of them.
    run_only = {"output_dir", "gradient_checkpointing", "save_every", "resume", "device", "progress"}
    run_only |= {"eval_every", "curve_limit", "sharding", "compile"}
    assert set(HPARAM_KEYS) == {f.name for f in fields(TrainConfig)} - run_only
    params = {"dft_min_weight", "dft_alpha", "q", "prob_threshold", "eaft_alpha", "eaft_top_k", "asft_lambda"}
    params |= {"psft_clip", "psft_minibatches", "iwsft_temperature", "iwsft_max_weight", "dpo_beta"}
    assert OBJECTIVE_KEYS == {"objective"} | params
    assert SWEEP_AXES == ("lr", "batch_size") and PER_METHOD == {"output_dir", "objective", "resume"}
    assert settings.PER_CELL == {"task", "methods"} and settings.REPLICATE_KEYS == {"seed"}
    assert OBJECTIVE_PARAMS["dft_min_weight"] == ("floor", 0.0, ("dft",))
    assert OBJECTIVE_PARAMS["prob_threshold"] == ("tau", 0.1, ("profit", "gft"))
    assert set(OBJECTIVE_PARAMS) == params
    # Records made before a parameter existed were made at its default: read back, they get it.
    assert {k: LATER_DEFAULTS[k] for k in params - {"dft_min_weight", "dft_alpha"}} == {
        "q": 10.0,
        "prob_threshold": 0.1,
        "eaft_alpha": 1.0,
        "eaft_top_k": 20,
        "asft_lambda": 0.05,
        "psft_clip": 0.2,
        "psft_minibatches": 8,
        "iwsft_temperature": 1.0,
        "iwsft_max_weight": 16.0,
        "dpo_beta": 0.1,
    }
    # The record's hparams keep TrainConfig's field order: it orders the leaderboard's columns.
    assert list(HPARAM_KEYS) == [f.name for f in fields(TrainConfig) if f.name in HPARAM_KEYS]


def test_the_config_id_ignores_the_objective_fields_and_the_seed_and_nothing_else():
    hparams = {key: getattr(TrainConfig(model="tiny"), key) for key in HPARAM_KEYS}
    same = config_id(hparams)
    for key in OBJECTIVE_KEYS | settings.REPLICATE_KEYS:
        assert config_id(hparams | {key: "changed"}) == same
    for key in set(HPARAM_KEYS) - OBJECTIVE_KEYS - settings.REPLICATE_KEYS:
        assert config_id(hparams | {key: "changed"}) != same, key


def test_presets_hold_only_what_differs_from_the_defaults():
    defaults = TrainConfig()
    for name, preset in PRESETS.items():
        for key, value in preset.items():
            assert getattr(defaults, key) != value, f"preset {name} repeats the default of {key}"
            TrainConfig(**{key: value})  # and every value passes its field's check
    # The learning rate has two homes and no more: the paper's default and the laptop preset.
    assert TrainConfig().lr == 5e-5 and PRESETS["laptop"]["lr"] == 1e-3
    assert [name for name, preset in PRESETS.items() if "lr" in preset] == ["laptop"]


def test_resolving_is_idempotent_and_fills_the_domain_model():
    once = resolve_train(TrainConfig(task="visual-math", batch_size=48, micro_batch_size=16), world_size=2)
    assert (once.model, once.micro_batch_size) == ("tiny-vl", 12)  # 24 per rank: 12 x 2
    assert resolve_train(once, world_size=2) == once


def test_train_takes_a_preset_and_explicit_flags_win():
    config = parse_train(["--preset", "laptop", "--lr", "3e-4", "--task", "code-lists"])
    assert (config.lr, config.batch_size, config.epochs, config.model) == (3e-4, 32, 2.0, "tiny")
    assert parse_train([]).batch_size == 256  # harness.train alone keeps the paper's recipe


def test_sweep_resolves_each_axis_and_keeps_the_most_that_fits():
    sweep = parse_sweep(["--lr", "1e-3", "1e-3", "2e-3", "--batch-size", "48", "--micro-batch-size", "32"])
    assert sweep.lrs == [1e-3, 2e-3] and sweep.batch_sizes == [48] and sweep.max_micro_batch_size == 32


def test_a_config_round_trips_through_its_flags():
    config = resolve_train(TrainConfig(lr=3e-4, packing=False, steps=7, train_limit=512, overlong="drop"))
    assert parse_train(to_flags(config)) == config


def test_list_flags_take_several_values_and_name_the_flag():
    parser = argparse.ArgumentParser()
    add_arguments(parser, SweepConfig)
    assert parser.parse_args(["--lr", "1e-3", "2e-3"]).lr == [1e-3, 2e-3]
    with pytest.raises(ConfigError, match="--lr must be a positive number, got -1.0"):
        SweepConfig(lr=[1e-3, -1.0])


def test_eval_every_and_curve_limit_are_checked():
    with pytest.raises(ConfigError, match="--eval-every must be >= 0"):
        TrainConfig(eval_every=-1)
    with pytest.raises(ConfigError, match="--curve-limit must be >= 1"):
        TrainConfig(curve_limit=0)


def test_split_batch_fits_the_micro_batch_and_names_impossible_splits():
    assert split_batch(64, 16, 2) == (16, 2)
    assert split_batch(12, 8, 1) == (6, 2)  # the largest divisor that fits
    with pytest.raises(ConfigError, match="--batch-size 4 is smaller than the 8 ranks"):
        split_batch(4, 8, 8)
    with pytest.raises(ConfigError, match="does not split evenly over 4 ranks"):
        split_batch(10, 8, 4)


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"num_samples": 0}, "--num-samples"),
        ({"temperature": -0.5}, "--temperature"),
        ({"num_samples": 4, "temperature": 0.0}, "--num-samples > 1 needs --temperature"),
        ({"temperature": 1.0, "top_p": 0.0}, "--top-p"),
        ({"temperature": 1.0, "top_p": 1.5}, "--top-p"),
    ],
)
def test_bad_sampling_flags_name_the_flag(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        Sampling(**kwargs)


def test_unset_sampling_takes_the_tasks_protocol_and_flags_win():
    import tasks

    paper = tasks.get("math-500").protocol
    assert Sampling().resolved(paper, budget=4096) == Sampling(
        temperature=1.0, top_p=1.0, num_samples=16, max_new_tokens=4096
    )
    assert Sampling(temperature=0.6, top_p=0.95).resolved(paper).num_samples == 16
    assert Sampling(num_samples=4).resolved(paper).temperature == 1.0
    embedded = Sampling().resolved(tasks.get("math-words").protocol, budget=256)
    assert (embedded.temperature, embedded.num_samples, embedded.max_new_tokens) == (0.0, 1, 256)
    with pytest.raises(
        ConfigError, match="--num-samples 4 needs --temperature > 0: the task's protocol is greedy"
    ):
        Sampling(num_samples=4).resolved(tasks.get("humaneval").protocol)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("cuda", r"^--device cuda: no CUDA device is visible \(torch .*\); use --device cpu$"),
        ("cuda:x", r"^--device cuda:x: not a device \(.*\); use cpu, cuda or cuda:N$"),
        ("mps", r"^--device mps: the harness runs on cpu or cuda$"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line_before_any_work(device, message, monkeypatch, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError, match=message):
        train(settings.TrainConfig(device=device, output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()
    for parse in (parse_experiment, parse_evaluate):
        with pytest.raises(ConfigError, match=message):
            parse(["--task", "math-words", "--device", device])


def test_a_solution_style_is_checked_and_the_tasks_own_is_no_style():
    assert resolve_train(TrainConfig(train_style="steps")).train_style is None  # one run, one id
    assert resolve_train(TrainConfig(train_style="numbered")).train_style == "numbered"
    numbered = resolve_train(TrainConfig(train_style="numbered"))
    assert config_id({"train_style": numbered.train_style}) != config_id({})  # another run
    with pytest.raises(
        ConfigError,
        match="^--train-style terse: task math-words has no solution style 'terse': its styles are steps, numbered$",
    ):
        resolve_train(TrainConfig(train_style="terse"))
    with pytest.raises(
        ConfigError,
        match="^--train-style numbered: task code-lists has no solution style 'numbered': it has no other style$",
    ):
        resolve_train(TrainConfig(task="code-lists", train_style="numbered"))
    with pytest.raises(
        ConfigError,
        match="^--train-style numbered rewrites a task's own solutions; the rows of --train-data x.jsonl",
    ):
        resolve_train(TrainConfig(train_style="numbered", train_data="x.jsonl"))
