"""The objective table is the one home of each objective: every row has its weight function, every
parameter it names is a TrainConfig field and every objective field is named by a row, and the
trainer, the resolver and the pages read the row's attributes."""

from __future__ import annotations

from dataclasses import fields

import pytest

from harness import objectives
from harness.config import OBJECTIVE, OBJECTIVE_PARAMS, OBJECTIVES, TrainConfig
from harness.errors import ConfigError
from harness.losses import LOSS_VALUES, SEQUENCE_WEIGHTS, WEIGHTS, Objective
from harness.resolve import check_objectives


def test_every_row_has_one_weight_function_and_nothing_else_does():
    assert OBJECTIVES == objectives.NAMES
    per_sequence = {r.name for r in objectives.OBJECTIVE_TABLE if r.per_sequence}
    assert set(SEQUENCE_WEIGHTS) == per_sequence and set(WEIGHTS) == set(objectives.NAMES) - per_sequence
    assert set(LOSS_VALUES) <= set(WEIGHTS)
    # An objective on pairs reads every token of its pair: it is per-sequence, with a model to compare.
    for r in objectives.OBJECTIVE_TABLE:
        assert r.data in (objectives.ROWS, objectives.PAIRS)
        assert r.data == objectives.ROWS or (r.per_sequence and r.reference == objectives.START)
    assert len({r.label for r in objectives.OBJECTIVE_TABLE}) == len(objectives.OBJECTIVE_TABLE)


def test_the_parameters_named_by_rows_are_exactly_the_objective_fields():
    declared = {f.name for f in fields(TrainConfig) if f.metadata["role"] == OBJECTIVE} - {"objective"}
    named = {p for r in objectives.OBJECTIVE_TABLE for p in r.params}
    assert named == declared == set(OBJECTIVE_PARAMS)
    # The loss's Objective takes every one of them, at TrainConfig's default.
    assert {f.name: f.default for f in fields(Objective)} == {"name": "sft"} | {
        f.name: f.default for f in fields(TrainConfig) if f.name in declared
    }
    assert Objective("q-family", q=1.0).q == 1.0 and Objective("dft") == Objective("dft")


def test_a_parameter_of_another_objective_is_refused_naming_its_owners():
    with pytest.raises(
        ConfigError, match=r"^--prob-threshold applies to objective profit, gft only, not 'dft'$"
    ):
        Objective("dft", prob_threshold=0.3)


def allowed_or_refused(allowed: bool, config: TrainConfig, name: str, world_size: int, message: str) -> None:
    if allowed:
        check_objectives(config, [name], world_size=world_size)
    else:
        with pytest.raises(ConfigError, match="^" + message):
            check_objectives(config, [name], world_size=world_size)


@pytest.mark.parametrize("name", objectives.NAMES)
def test_the_resolver_reads_the_rows_fsdp_and_lora(name):
    row = objectives.row(name)
    data = {"train_data": "pairs.jsonl"} if row.data == objectives.PAIRS else {}
    sharded = TrainConfig(objective=name, sharding="fsdp", **data)
    refusal = f"--objective {name} with --sharding fsdp: its {row.reference} is not"
    allowed_or_refused(row.fsdp, sharded, name, 2, refusal)
    adapted = TrainConfig(objective=name, lora_rank=8, **data)
    allowed_or_refused(
        row.lora, adapted, name, 1, f"--objective {name} with --lora-rank: its {row.reference} would"
    )
    assert Objective(name).needs_reference == (row.reference is not None)


def test_pages_label_every_objective_from_the_table():
    assert [objectives.label(m) for m in ("base", "psft", "chord-phi")] == ["base", "PSFT", "CHORD-phi"]
