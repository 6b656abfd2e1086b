"""harness.data: row validation, completion-only labels, overlong policies, packing and collation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import write_jsonl

from harness.config import IGNORE_INDEX
from harness.data.encode import collate, encode_all
from harness.data.rows import check_row, read_rows, training_rows
from harness.data.text import Encoded, encode, pack
from harness.errors import DataError
from harness.models import stop_token_ids

REPO = Path(__file__).resolve().parents[1]
CLI_MODEL = "tiny"


def make_row(completion="2 + 3 = 5.", prompt="What is 2 plus 3?", system=None):
    messages = [{"role": "system", "content": system}] if system else []
    return {
        "prompt": messages + [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": completion}],
    }


def trained(encoded: Encoded) -> list[int]:
    return [t for t in encoded.labels if t != IGNORE_INDEX]


# --- completion-only labels ---------------------------------------------------------------------


@pytest.mark.parametrize("system", [None, "You are a careful tutor."], ids=["user", "system+user"])
def test_only_the_completion_and_its_end_of_turn_are_trained(tokenizer, system):
    row = make_row("2 + 3 = 5.", system=system)
    encoded = encode(tokenizer, row, max_length=256)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    assert len(encoded.input_ids) == len(encoded.labels)
    assert tokenizer.decode(trained(encoded)) == "2 + 3 = 5.<|im_end|>"
    # The "\n" ChatML writes after <|im_end|> is neither trained nor part of the input.
    assert encoded.input_ids[-1] == im_end and encoded.labels[-1] == im_end
    full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert full.endswith("<|im_end|>\n")
    assert tokenizer.decode(encoded.input_ids) == full[: -len("\n")]

    prompt_text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    assert prompt_text.endswith("<|im_start|>assistant\n")
    assert encoded.input_ids[:n] == prompt_ids
    assert encoded.labels[:n] == [IGNORE_INDEX] * n  # the assistant header included
    assert encoded.labels[n:] == encoded.input_ids[n:]  # every completion token is trained
    assert encoded.trained_tokens == len(encoded.input_ids) - n
    if system:
        assert "You are a careful tutor." in tokenizer.decode(prompt_ids)


# --- bad input: one-line messages naming the file and the line or row ---------------------------

BAD_ROWS = {
    "missing completion": ({"prompt": make_row()["prompt"]}, "missing field 'completion'"),
    "empty completion": ({**make_row(), "completion": []}, "'completion' is empty"),
    "whitespace completion": (make_row(" \n\t "), "'completion' has no text"),
    "prompt is a string": (
        {**make_row(), "prompt": "What is 2 plus 3?"},
        "'prompt' must be a list of messages",
    ),
    "message without role": ({**make_row(), "prompt": [{"content": "hi"}]}, "prompt[0] must be a message"),
    "int content": (make_row(5), "completion[0]['content'] must be a string"),
}


def assert_one_line(error: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message
    return message


@pytest.mark.parametrize("bad, expected", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_check_row_names_where_and_what(bad, expected):
    with pytest.raises(DataError) as error:
        check_row(bad, "train.jsonl line 7")
    assert assert_one_line(error, expected).startswith("train.jsonl line 7: ")


@pytest.mark.parametrize("bad, expected", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_read_rows_jsonl_reports_the_line(tmp_path, bad, expected):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(make_row()) + "\n\n" + json.dumps(bad) + "\n")  # line 2 is blank
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, f"{path} line 3: ", expected)


def test_read_rows_jsonl_line_that_is_not_json(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        "\n" + json.dumps(make_row()) + "\n   \n" + '{"prompt": [\n' + json.dumps(make_row()) + "\n"
    )
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, f"{path} line 4: not valid JSON")


def test_read_rows_reads_good_jsonl_and_json(tmp_path):
    rows = [make_row("one"), make_row("two", system="Be brief.")]
    jsonl, plain = tmp_path / "a.jsonl", tmp_path / "a.json"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    plain.write_text(json.dumps(rows))
    assert read_rows(jsonl) == rows
    assert read_rows(str(plain)) == rows


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("rows.json", json.dumps(make_row()), "expected a JSON list of rows"),
        (
            "rows.json",
            json.dumps([make_row(), {**make_row(), "completion": []}]),
            "row 1: 'completion' is empty",
        ),
        ("rows.json", "[]", "no rows"),
        ("rows.json", "", "not valid JSON"),
        ("rows.jsonl", "", "no rows"),
        ("rows.jsonl", "\n  \n", "no rows"),
        ("rows.txt", json.dumps(make_row()), "unsupported file type '.txt'"),
    ],
    ids=[
        "json-not-a-list",
        "json-bad-row",
        "json-empty-list",
        "json-empty-file",
        "jsonl-empty",
        "jsonl-blank",
        "txt",
    ],
)
def test_read_rows_bad_files(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, str(path), expected)


def test_read_rows_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, str(path), "no such file")


@pytest.mark.slow
def test_read_rows_parquet_names_the_bad_row(tmp_path):
    import datasets

    path = tmp_path / "train.parquet"
    good, bad = make_row("one"), make_row("   ")
    datasets.Dataset.from_list([good, good, bad]).to_parquet(str(path))
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, f"{path} row 2: ", "'completion' has no text")


def test_read_rows_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    path = tmp_path / "train.jsonl"
    row = make_row("first\u2028second\x85third")
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_rows(path) == [row]


def test_read_rows_non_utf8_file_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xff\xfe" + json.dumps(make_row()).encode("utf-16-le"))
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, str(path))


def test_read_rows_utf8_with_byte_order_mark(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(make_row()) + "\n").encode())
    assert read_rows(path) == [make_row()]


def test_read_rows_extension_is_case_insensitive(tmp_path):
    path = tmp_path / "TRAIN.JSONL"
    path.write_text(json.dumps(make_row()) + "\n")
    assert read_rows(path) == [make_row()]


def test_read_rows_rejects_csv_saying_why(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("prompt,completion\nhi,there\n")
    with pytest.raises(DataError) as error:
        read_rows(path)
    assert_one_line(error, str(path), "CSV cannot hold lists of messages", ".jsonl")


def test_overlong_error_from_a_file_names_the_line(tmp_path, tokenizer, overlong):
    rows, _, max_length = overlong
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(["", json.dumps(rows[0]), "", json.dumps(rows[1])]) + "\n")  # row 1 on line 4
    read = read_rows(path)
    assert read.locations == [f"{path} line 2", f"{path} line 4"]
    assert read[1:].locations == [f"{path} line 4"]
    with pytest.raises(DataError) as error:
        encode_all(tokenizer, read, max_length, "error", str(path))
    assert_one_line(error, f"{path} line 4: ", f"exceed --max-length {max_length}")


# --- overlong policies --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overlong(tokenizer):
    """A short row, a long row whose prompt fits, and a row whose prompt alone is too long."""
    rows = [
        make_row("2 + 3 = 5."),
        make_row(" ".join(["and then we add one more"] * 12)),
        make_row("ok", prompt=" ".join(["a very long question"] * 40)),
    ]
    full = [encode(tokenizer, r, max_length=10_000) for r in rows]
    prompts = [len(e.input_ids) - e.trained_tokens for e in full]
    max_length = len(full[0].input_ids) + 4
    assert prompts[1] + 1 < max_length < len(full[1].input_ids) and prompts[2] >= max_length
    return rows, full, max_length


def test_overlong_error_names_the_row_and_the_flag(tokenizer, overlong):
    rows, _, max_length = overlong
    with pytest.raises(DataError) as error:
        encode_all(tokenizer, rows, max_length, "error", "train.jsonl")
    assert_one_line(error, "train.jsonl row 1: ", f"exceed --max-length {max_length}")


def test_overlong_drop(tokenizer, overlong):
    rows, full, max_length = overlong
    kept, counts = encode_all(tokenizer, rows, max_length, "drop", "src")
    assert kept == [full[0]]
    assert counts == Counter(dropped_overlong=2)


def test_overlong_truncate_cuts_the_completion_and_drops_prompts_that_do_not_fit(tokenizer, overlong):
    rows, full, max_length = overlong
    kept, counts = encode_all(tokenizer, rows, max_length, "truncate", "src")
    assert counts == Counter(truncated_overlong=1, dropped_overlong=1)
    assert len(kept) == 2 and kept[0] == full[0]
    cut = kept[1]
    assert len(cut.input_ids) == len(cut.labels) == max_length
    assert cut.input_ids == full[1].input_ids[:max_length]
    assert cut.labels == full[1].labels[:max_length]
    assert cut.labels[-1] not in stop_token_ids(tokenizer)
    assert cut.trained_tokens > 0


def test_truncate_needs_room_for_one_completion_token(tokenizer, overlong):
    rows, full, _ = overlong
    n_prompt = len(full[1].input_ids) - full[1].trained_tokens
    with pytest.raises(DataError, match="no trainable rows"):
        encode_all(tokenizer, rows[1:2], n_prompt, "truncate", "src")  # only the prompt fits: dropped
    kept, counts = encode_all(tokenizer, rows[1:2], n_prompt + 1, "truncate", "src")
    assert counts == Counter(truncated_overlong=1) and kept[0].trained_tokens == 1


def test_unknown_overlong_policy(tokenizer, overlong):
    rows, _, max_length = overlong
    with pytest.raises(DataError) as error:
        encode_all(tokenizer, rows, max_length, "squeeze", "src")
    assert_one_line(error, "'squeeze'", "truncate", "drop", "error")


def test_no_trainable_rows_left(tokenizer, overlong):
    rows, _, _ = overlong
    with pytest.raises(DataError) as error:
        encode_all(tokenizer, rows, 4, "truncate", "train.jsonl")
    assert_one_line(error, "train.jsonl", "no trainable rows", "of 3")


# --- packing and collation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "lengths, max_length",
    [
        ([6, 4, 5, 5], 10),
        ([10, 1, 10, 9, 2, 3, 7], 10),
        ([1] * 9, 4),
        ([7], 7),
        ([3, 8, 2, 8, 5, 1, 6, 4, 4], 12),
    ],
)
def test_pack_places_every_index_once_within_max_length(lengths, max_length):
    rows = pack(lengths, max_length)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= max_length for row in rows)


def test_pack_first_fit_decreasing_is_optimal_here():
    rows = pack([6, 4, 5, 5], 10)
    assert len(rows) == 2
    assert sorted(sorted(row) for row in rows) == [[0, 1], [2, 3]]


def segments(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of each run of position ids 0, 1, 2, ..."""
    starts = (position_ids == 0).nonzero().flatten().tolist()
    return list(zip(starts, starts[1:] + [len(position_ids)]))


@pytest.fixture(scope="module")
def examples(tokenizer):
    rows = [
        make_row("5."),
        make_row("2 + 3 = 5, so the answer is 5."),
        make_row("2 + 3 is 5.", system="Be brief."),
    ]
    return [encode(tokenizer, r, max_length=256) for r in rows]


def test_collate_packed(tokenizer, examples):
    lengths = sorted(len(e.input_ids) for e in examples)
    max_length = lengths[-1] + lengths[-2]  # the two longest fill a row; the shortest gets padding
    pad = tokenizer.pad_token_id
    batch = collate(examples, max_length, pad_id=pad)

    assert set(batch) == {"input_ids", "labels", "position_ids"}  # no attention_mask when packed
    assert batch["input_ids"].shape == batch["labels"].shape == batch["position_ids"].shape == (2, max_length)
    recovered, tails = [], 0
    for input_ids, labels, positions in zip(batch["input_ids"], batch["labels"], batch["position_ids"]):
        assert positions[0] == 0
        # Every sequence starts with an untrained token: the shifted loss never predicts across a boundary.
        assert (labels[positions == 0] == IGNORE_INDEX).all()
        for start, end in segments(positions):
            assert positions[start:end].tolist() == list(range(end - start))
            tokens, targets = input_ids[start:end].tolist(), labels[start:end].tolist()
            if tokens == [pad] * len(tokens) and set(targets) == {IGNORE_INDEX}:
                tails += 1  # the padding tail: a segment of its own, never trained
                assert end == max_length
            else:
                recovered.append((tokens, targets))
    assert tails == 1
    expected = [(e.input_ids, e.labels) for e in examples]
    assert sorted(recovered) == sorted(expected)


def test_collate_unpacked(tokenizer, examples):
    pad = tokenizer.pad_token_id
    batch = collate(examples, 256, pad_id=pad, packing=False)
    width = max(len(e.input_ids) for e in examples)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (len(examples), width)
    for r, e in enumerate(examples):
        n = len(e.input_ids)
        assert batch["input_ids"][r].tolist() == e.input_ids + [pad] * (width - n)
        assert batch["labels"][r].tolist() == e.labels + [IGNORE_INDEX] * (width - n)
        assert batch["attention_mask"][r].tolist() == [1] * n + [0] * (width - n)
        assert batch["position_ids"][r, :n].tolist() == list(range(n))


# --- the training CLI on bad data ---------------------------------------------------------------


def test_train_cli_bad_data_is_one_error_line_and_touches_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(make_row()) + "\n" + json.dumps({"prompt": make_row()["prompt"]}) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious\n")
    # The output dir is a new folder inside ``out``: a run that fails on its data must not create it.
    args = ["--model", CLI_MODEL, "--train-data", str(bad), "--output-dir", str(out / "run")]
    args += ["--steps", "1", "--batch-size", "1", "--micro-batch-size", "1"]
    from harness.train import main as train_main  # import cost: torch and transformers

    # In this process (harness.experiment's CLI test starts the real interpreter once).
    assert train_main(args) == 1
    stderr = capsys.readouterr().err
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:")
    assert f"{bad} line 2" in lines[0] and "missing field 'completion'" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious\n"


# --- preference pairs ----------------------------------------------------------------------------------


def make_pair(chosen="2 + 3 = 5.", rejected="2 + 3 = 6.", prompt="What is 2 plus 3?"):
    row = make_row(chosen, prompt)
    return {
        "prompt": row["prompt"],
        "chosen": row["completion"],
        "rejected": make_row(rejected)["completion"],
    }


def test_pairs_collate_as_two_sequences_each_chosen_then_rejected(tokenizer):
    pairs = [make_pair(), make_pair("4.", "a much longer wrong answer of many tokens", "What is 2 plus 2?")]
    examples, counts = encode_all(tokenizer, pairs, 64, "truncate", "doc", pairs=True)
    assert not counts and [e.trained_tokens for e in examples] == [
        e.chosen.trained_tokens + e.rejected.trained_tokens for e in examples
    ]
    alone = [
        encode(tokenizer, make_row(p["chosen"][0]["content"], p["prompt"][0]["content"]), 64) for p in pairs
    ]
    assert [e.chosen.input_ids for e in examples] == [a.input_ids for a in alone]
    for packing in (True, False):
        batch = collate(examples, 256, tokenizer.pad_token_id, packing, sequences=True)
        assert batch["num_sequences"] == 4
        ids, tokens = batch["sequence_ids"], batch["input_ids"]
        # Each sequence's tokens are exactly its encoding, wherever packing put it; padding is -1.
        sides = [side for e in examples for side in (e.chosen, e.rejected)]
        for k, side in enumerate(sides):
            assert tokens[ids == k].tolist() == side.input_ids
        assert (ids >= -1).all() and int((ids == -1).sum()) == int(
            tokens.numel() - sum(len(s.input_ids) for s in sides)
        )
    assert "sequence_ids" not in collate(examples, 256, tokenizer.pad_token_id)


def test_a_pair_is_dropped_whole_when_either_answer_is_overlong(tokenizer):
    long = " ".join(["word"] * 200)
    examples, counts = encode_all(
        tokenizer, [make_pair(), make_pair(rejected=long)], 40, "drop", "doc", pairs=True
    )
    assert len(examples) == 1 and counts == Counter(dropped_overlong=1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "q", "chosen": "a"}, "p.jsonl line 1: missing field 'rejected' (a preference pair is prompt, chosen and rejected)"),
        ({"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}, "p.jsonl line 1: 'chosen' must be a list of messages, got str"),
        ({"prompt": "q", "chosen": "a", "rejected": " "}, "p.jsonl line 1: 'rejected' has no text, so there is nothing to train"),
        ({"prompt": [{"role": "user", "content": "q"}], "chosen": [], "rejected": "b"}, "p.jsonl line 1: 'chosen' is empty"),
    ],
)  # fmt: skip
def test_a_bad_pair_is_one_line_naming_the_file_line_and_side(tmp_path, row, message):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [row])
    with pytest.raises(DataError) as error:
        read_rows(path, pairs=True)
    assert str(error.value) == message.replace("p.jsonl", str(path))


def test_pairs_and_rows_each_refuse_the_other_and_a_selfgen_folder_gives_each_its_file(tmp_path):
    from harness.data.rows import data_file, histogram_rows, holds_pairs, training_rows

    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, [make_pair(), make_pair("4.", "5.", "2 plus 2?")])
    with pytest.raises(
        DataError,
        match=r"line 1: a preference pair \(prompt, chosen, rejected\), not a prompt/completion row: only dpo train",
    ):
        training_rows("math-words", str(pairs), None)
    with pytest.raises(
        DataError,
        match=r"line 1: missing field 'chosen' \(a preference pair is prompt, chosen and rejected\)",
    ):
        write_jsonl(tmp_path / "rows.jsonl", [make_row()])
        training_rows("math-words", str(tmp_path / "rows.jsonl"), None, pairs=True)
    with pytest.raises(DataError, match=r"^dpo train on preference pairs .*: give --train-data a pairs file"):
        training_rows("math-words", None, None, pairs=True)
    # A selfgen folder (finished: its selfgen.json is there): rows for row objectives, pairs for DPO.
    with pytest.raises(DataError, match=r"has no selfgen.json \(unfinished: run the selfgen command again"):
        data_file(tmp_path)
    (tmp_path / "selfgen.json").write_text("{}")
    assert data_file(tmp_path) == tmp_path / "rows.jsonl" and data_file(tmp_path, True) == pairs
    assert len(training_rows("math-words", str(tmp_path), None, pairs=True)[0]) == 2
    assert holds_pairs(pairs) and not holds_pairs(tmp_path) and not holds_pairs(tmp_path / "rows.jsonl")
    # A pairs file alone: the histogram reads the chosen answers as rows.
    rows, source = histogram_rows("math-words", str(pairs), 1)
    assert rows == [{"prompt": make_pair()["prompt"], "completion": make_pair()["chosen"]}]
    assert source == f"{pairs} (the chosen answers)" and rows.locations == [f"{pairs} line 1"]
    (tmp_path / "pairs.jsonl").unlink()
    with pytest.raises(
        DataError, match=r"a folder is read as one python -m harness.selfgen made, and it has no pairs.jsonl$"
    ):
        data_file(tmp_path, True)


def test_a_packed_sequence_is_never_the_target_of_the_one_before_it():
    # Two sequences whose every label is trained (a row with no prompt): packed into one row, the
    # second's first token would be the target of the first's last position; it is not trained.
    first, second = Encoded([1, 2, 3], [1, 2, 3]), Encoded([4, 5], [4, 5])
    batch = collate([first, second], 16, 0, packing=True, sequences=True)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]]
    assert batch["sequence_ids"].tolist() == [[0, 0, 0, 1, 1]]


def test_a_selfgen_folder_is_one_training_input_for_every_method_and_changes_with_either_file(tmp_path):
    # RFT reads the folder's rows, DPO its pairs: one configuration, so the offline table compares them;
    # an edit to either file is another configuration for both (each edit changes the size: the digest
    # is cached by size and modification time).
    from harness.config import TrainConfig
    from harness.plan import hparams_of

    folder = tmp_path / "selfgen"
    folder.mkdir()
    (folder / "rows.jsonl").write_text(json.dumps({"prompt": "q", "completion": "a"}) + "\n")
    (folder / "pairs.jsonl").write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    assert "train_data_sha256" not in hparams_of(TrainConfig(train_data=str(folder)), 1)  # unfinished
    (folder / "selfgen.json").write_text("{}")

    def held(objective: str) -> str:
        return hparams_of(TrainConfig(train_data=str(folder), objective=objective), 1)["train_data_sha256"]

    first = held("sft")
    assert held("dpo") == first and len(first) == 16
    (folder / "pairs.jsonl").write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "cc"}) + "\n")
    assert held("sft") == held("dpo") != first
    second = held("sft")
    (folder / "rows.jsonl").write_text(json.dumps({"prompt": "q", "completion": "zzz"}) + "\n")
    assert held("dpo") not in (first, second)


def test_a_runs_identity_holds_what_its_training_file_holds(tmp_path, monkeypatch):
    from harness.config import TrainConfig
    from harness.identity import config_id
    from harness.plan import hparams_of

    rows, _ = training_rows("math-words", None, 4)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    first = hparams_of(TrainConfig(train_data=str(data)), 1)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows[:3]))  # the same path, other rows
    second = hparams_of(TrainConfig(train_data=str(data)), 1)
    assert first["train_data_sha256"] != second["train_data_sha256"]
    assert config_id(first) != config_id(second)
    # Generated rows (no file to edit) add nothing: every record made before keeps its id.
    assert "train_data_sha256" not in hparams_of(TrainConfig(), 1)
    # A benchmark's local copy is part of its evaluation: another copy is another evaluation.
    from harness.experiment import parse_experiment
    from harness.plan import evaluation_of

    copy = tmp_path / "data" / "math-500.jsonl"
    copy.parent.mkdir()
    copy.write_text(json.dumps({"problem": "1 + 1?", "answer": "2", "unique_id": "a"}) + "\n")
    monkeypatch.setenv("HARNESS_DATA", str(copy.parent))
    experiment = parse_experiment(["--ood-tasks", "math-500"])
    spec = evaluation_of(experiment, "sft")
    assert set(spec["data"]) == {"math-500"}
    copy.write_text(json.dumps({"problem": "2 + 2?", "answer": "4", "unique_id": "a"}) + "\n")
    assert evaluation_of(experiment, "sft")["data"] != spec["data"]
    monkeypatch.delenv("HARNESS_DATA")
    assert "data" not in evaluation_of(parse_experiment([]), "sft")
    # So is a --problem-file's: its completions are never resumed for another file's problems.
    from tasks.humaneval import HumanEval

    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"task_id": "a"}\n')
    before = HumanEval(problem_file=problems).data_digest()
    problems.write_text('{"task_id": "b"}\n')
    assert HumanEval(problem_file=problems).data_digest() != before and HumanEval().data_digest() is None
