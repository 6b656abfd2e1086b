"""The vision-language tasks: visual-math's generated splits and pictures, and easy-vqa's real data."""

import re

import pytest

import tasks
from tasks.easy_vqa import EasyVQA
from tasks.visual_math import GRID, RGB, SEEN_COLOURS, UNSEEN_COLOURS, VisualMath, draw

TASK = VisualMath()


def counts(example: dict) -> dict[str, int]:
    found: dict[str, int] = {}
    for thing in example["objects"]:
        found[thing["colour"]] = found.get(thing["colour"], 0) + 1
    return found


def test_loading_is_reproducible_and_a_limit_is_a_prefix():
    assert TASK.load("test") == VisualMath().load("test")
    assert TASK.load("ood-colours", limit=7) == TASK.load("ood-colours")[:7]
    assert draw(TASK.load("test", limit=1)[0]).tobytes() == draw(TASK.load("test", limit=1)[0]).tobytes()


def test_split_sizes_roles_and_registry():
    assert [len(TASK.load(s.name)) for s in TASK.splits] == [2000, 200, 200, 200, 200]
    assert [s.role for s in TASK.splits] == ["train", "test", "ood", "ood", "ood"]
    assert tasks.get("visual-math").domain == tasks.get("easy-vqa").domain == "vlm"
    assert TASK.ood_tasks == ("easy-vqa",)


def test_evaluation_scenes_never_repeat_a_training_scene():
    train = {e["key"] for e in TASK.load("train")}
    for split in TASK.eval_splits:
        keys = [e["key"] for e in TASK.load(split)]
        assert len(set(keys)) == len(keys) and not train & set(keys)


def test_each_ood_split_shifts_what_it_says():
    for split, colours, low, high in [
        ("train", SEEN_COLOURS, 1, 4),
        ("ood-more-objects", SEEN_COLOURS, 5, 8),
        ("ood-colours", UNSEEN_COLOURS, 1, 4),
    ]:
        for example in TASK.load(split):
            assert set(counts(example)) <= set(colours)
            assert all(low <= n <= high for n in counts(example).values())
    assert {e["layout"] for e in TASK.load("ood-layout")} == {"large"}
    assert {e["layout"] for e in TASK.load("train")} == {"grid"}


def test_questions_answers_and_solutions_agree_with_the_scene():
    for example in TASK.load("test") + TASK.load("ood-more-objects"):
        count = counts(example)
        asked = re.findall(r"(\w+) shapes", example["question"])
        if example["question"].startswith("How many more"):
            expected = count[asked[0]] - count[asked[1]]
            assert expected > 0
        else:
            expected = sum(count[c] for c in asked)
        assert example["answer"] == str(expected)
        assert TASK.score(example, example["solution"]) == 1.0
        assert (
            TASK.score(example, example["solution"].replace(f"{{{expected}}}", f"{{{expected + 1}}}")) == 0.0
        )


def test_the_picture_shows_each_object_in_its_colour():
    example = TASK.load("test", limit=1)[0]
    image = draw(example)
    assert image.size == (112, 112)
    for thing in example["objects"]:
        x, y = thing["cell"]
        centre = (x * 14 + 7, y * 14 + 9)  # inside circle, square and triangle alike
        assert image.getpixel(centre) == RGB[thing["colour"]]
    assert all(0 <= x < GRID and 0 <= y < GRID for x, y in (t["cell"] for t in example["objects"]))


def test_the_prompt_holds_the_picture_as_an_image_part():
    example = TASK.load("test", limit=1)[0]
    [message] = TASK.messages(example)["prompt"]
    image, text = message["content"]
    assert image["type"] == "image" and image["image"].tobytes() == draw(example).tobytes()
    assert example["question"] in text["text"] and "\\boxed{}" in text["text"]


def test_easy_vqa_loads_its_real_pictures_and_scores_exact_answers():
    task = EasyVQA()
    examples = task.load("test")
    assert len(examples) == 9673 and len(task.load("train", limit=3)) == 3
    assert task.load("test", limit=5) == examples[:5]
    assert len({e["image"] for e in examples[:50]}) > 20  # shuffled: a limit samples many pictures
    example = next(e for e in examples if e["answer"] == "circle")
    assert task.score(example, "Circle.") == task.score(example, " circle") == 1.0
    assert task.score(example, "\\boxed{circle}") == 1.0
    assert task.score(example, "a circle") == task.score(example, "rectangle") == 0.0


@pytest.mark.parametrize("split", ["train", "test"])
def test_easy_vqa_pictures_open(split):
    from PIL import Image

    example = EasyVQA().load(split, limit=1)[0]
    with Image.open(example["image"]) as image:
        assert image.size == (64, 64)
