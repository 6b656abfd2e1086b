"""Vision-language rows on the embedded tiny VLM: masks, mixed-size batches, bad images, round trips."""

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from harness.config import IGNORE_INDEX
from harness.data.encode import collate, encode_all
from harness.data.images import VISION_TOKENS, encode_with_images
from harness.data.rows import read_rows
from harness.errors import DataError
from harness.models import is_vision, load_model, load_processor, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def processor():
    return load_processor("tiny-vl")


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-vl")


def picture(width: int, height: int, colour: str = "red") -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def row(image, question: str = "What colour is it?", answer: str = "red") -> dict:
    return {
        "prompt": [
            {
                "role": "user",
                "content": [{"type": "image", "image": image}, {"type": "text", "text": question}],
            }
        ],
        "completion": [{"role": "assistant", "content": answer}],
    }


def test_the_embedded_vlm_is_a_vision_backbone_and_the_text_base_is_not():
    assert is_vision("tiny-vl") and not is_vision("tiny")


def test_image_tokens_prompt_and_padding_are_never_trained(processor):
    encoded = encode_with_images(processor, row(picture(112, 112)), max_length=128)
    tokenizer = processor.tokenizer
    vision_ids = set(tokenizer.convert_tokens_to_ids(list(VISION_TOKENS)))
    image_positions = [i for i, t in enumerate(encoded.input_ids) if t == processor.image_token_id]
    assert len(image_positions) == 16  # 112 x 112 pixels: 8 x 8 patches of 14, merged 2 x 2
    assert all(encoded.labels[i] == IGNORE_INDEX for i, t in enumerate(encoded.input_ids) if t in vision_ids)
    assert encoded.mm_token_type_ids == [int(i in image_positions) for i in range(len(encoded.input_ids))]
    trained = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "red<|im_end|>"
    assert encoded.labels[-len(trained) :] == encoded.input_ids[-len(trained) :]
    batch = collate(
        [encoded, encode_with_images(processor, row(picture(56, 56)), 128)], 128, tokenizer.pad_token_id
    )
    padded = batch["attention_mask"] == 0
    assert padded.any() and (batch["labels"][padded] == IGNORE_INDEX).all()


@pytest.mark.slow
def test_a_mixed_size_batch_scores_each_row_as_it_scores_alone(processor, model):
    rows = [
        row(picture(112, 84, "blue"), answer="blue"),
        row(picture(56, 56)),
        row(picture(84, 112, "green")),
    ]
    encoded = [encode_with_images(processor, r, max_length=128) for r in rows]
    assert [e.image_grid_thw.tolist() for e in encoded] == [[[1, 6, 8]], [[1, 4, 4]], [[1, 8, 6]]]
    batch = collate(encoded, 128, processor.tokenizer.pad_token_id)
    assert batch["pixel_values"].shape[0] == 48 + 16 + 48  # every patch of every picture, in row order
    assert "position_ids" not in batch  # never packed: the model derives 3-D positions per row
    # The same tensors as the processor makes for the rows in one call (pixels are made per batch).
    texts = [
        processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows
    ]
    direct = processor(
        text=texts,
        images=[r["prompt"][0]["content"][0]["image"] for r in rows],
        padding=True,
        return_tensors="pt",
    )
    torch.testing.assert_close(batch["pixel_values"], direct["pixel_values"])
    torch.testing.assert_close(batch["image_grid_thw"], direct["image_grid_thw"])

    def token_losses(inputs):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        with torch.no_grad():
            logits = model(**inputs).logits
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=IGNORE_INDEX, reduction="none"
        )
        return [row_losses[row_labels[1:] != IGNORE_INDEX] for row_losses, row_labels in zip(losses, labels)]

    together = token_losses(batch)
    for i, example in enumerate(encoded):
        alone = token_losses(collate([example], 128, processor.tokenizer.pad_token_id))[0]
        torch.testing.assert_close(together[i], alone, atol=1e-4, rtol=1e-4)


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_relative_image_paths_are_read_beside_the_data_file(tmp_path, processor):
    picture(56, 56).save(tmp_path / "a.png")
    rows = read_rows(write_rows(tmp_path / "data.jsonl", [row("a.png")]))
    examples, _ = encode_all(processor.tokenizer, rows, 128, "truncate", "data", processor)
    assert examples[0].image_grid_thw.tolist() == [[1, 4, 4]]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: row("missing.png"), "line 2: image missing.png: no such file"),
        (lambda d: row(str(d / "corrupt.png")), "not a readable image"),
        (lambda d: row(str(d / "thin.png")), "aspect ratio"),
        (lambda d: row("a.png", question="Look: <|image_pad|>"), "holds the placeholder <|image_pad|>"),
        (
            lambda d: (
                {**row("a.png"), "images": ["a.png", "a.png"]}
                | {"prompt": [{"role": "user", "content": [{"type": "image"}]}]}
            ),
            "1 image placeholder(s) in the prompt but 2 image(s) in 'images'",
        ),
        (lambda d: row(5), "an image must be a path, a file:// or data: URL, or a picture, not int"),
    ],
    ids=["missing", "corrupt", "aspect", "literal-placeholder", "count-mismatch", "not-an-image"],
)
def test_bad_images_name_the_row(tmp_path, processor, make, message):
    picture(56, 56).save(tmp_path / "a.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a picture")
    picture(3000, 10).save(tmp_path / "thin.png")
    data = write_rows(tmp_path / "data.jsonl", [row("a.png"), make(tmp_path)])
    with pytest.raises(DataError, match=rf"data\.jsonl line 2: .*{re.escape(message.split(': ', 1)[-1])}"):
        encode_all(processor.tokenizer, read_rows(data), 128, "truncate", "data", processor)


def test_an_image_that_cannot_fit_max_length_is_an_error_naming_its_tokens(tmp_path, processor):
    picture(112, 112).save(tmp_path / "big.png")
    data = write_rows(tmp_path / "data.jsonl", [row("big.png")])
    with pytest.raises(
        DataError, match=r"line 1: the prompt takes \d+ tokens \(16 for its images\) of --max-length 20"
    ):
        encode_all(processor.tokenizer, read_rows(data), 20, "drop", "data", processor)


@pytest.mark.slow
def test_a_text_only_backbone_refuses_rows_with_images(tmp_path):
    picture(56, 56).save(tmp_path / "a.png")
    data = write_rows(tmp_path / "data.jsonl", [row("a.png")])
    with pytest.raises(DataError, match="line 1: the row has images but the backbone is text-only"):
        encode_all(load_tokenizer("tiny"), read_rows(data), 128, "truncate", "data")


@pytest.mark.slow
def test_a_bad_image_stops_training_before_anything_is_written(tmp_path):
    from harness.config import TrainConfig
    from harness.trainer import train

    data = write_rows(tmp_path / "data.jsonl", [row("gone.png")] * 4)
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    with pytest.raises(DataError, match="gone.png: no such file"):
        train(
            TrainConfig(
                output_dir=str(out),
                model="tiny-vl",
                train_data=str(data),
                steps=1,
                batch_size=2,
                micro_batch_size=2,
                progress=False,
            )
        )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_train_and_evaluate_the_tiny_vlm_through_the_cli_and_reload_the_checkpoint(
    tmp_path, processor, capsys
):
    # The commands in this process: an interpreter of their own would only repeat the imports (the
    # numerics and two-rank tests start `python -m harness.train` itself).
    from harness.evaluate import main as evaluate_main  # import cost: torch and transformers
    from harness.train import main as train_main

    out = tmp_path / "run"
    argv = ["--model", "tiny-vl", "--task", "visual-math"]
    argv += ["--output-dir", str(out), "--steps", "2", "--batch-size", "4", "--micro-batch-size", "2"]
    argv += ["--train-limit", "8", "--lr", "1e-3", "--max-length", "128", "--no-progress"]
    assert train_main(argv) == 0
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(logged) == 2 and all(r["trained_tokens"] > 0 for r in logged)

    capsys.readouterr()
    assert evaluate_main(["--model", str(out / "model"), "--task", "visual-math", "--eval-limit", "3"]) == 0
    printed = capsys.readouterr().out
    assert "ood-colours" in printed and "(n=3)" in printed
    # The checkpoint is an ordinary Hugging Face folder: the Auto classes load it and agree.
    reloaded = AutoModelForImageTextToText.from_pretrained(out / "model")
    reprocessor = AutoProcessor.from_pretrained(out / "model")
    assert reprocessor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    inputs = reprocessor(
        text=[
            reprocessor.apply_chat_template(
                row(picture(56, 56))["prompt"], add_generation_prompt=True, tokenize=False
            )
        ],
        images=[picture(56, 56)],
        return_tensors="pt",
    )
    ours = load_model(str(out / "model"))
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, ours(**inputs).logits)
    assert not torch.equal(
        reloaded.model.visual.patch_embed.proj.weight,
        load_model("tiny-vl").model.visual.patch_embed.proj.weight,
    )  # the vision tower was trained too
