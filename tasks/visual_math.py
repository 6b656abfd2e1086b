r"""visual-math: count coloured shapes in a picture, combine the counts, answer in ``\boxed{}``.

Each picture (drawn with Pillow, 112 x 112 pixels: the embedded VLM sees it as 4 x 4 merged patches)
holds circles, squares and triangles of two or three colours, one shape per cell of an 8 x 8 grid.
A question asks for one colour's count, the total of two colours, or how many more of one colour
there are than of another; the solution states the counts it read, then the arithmetic. Scenes are
generated from fixed per-split seeds and drawn on demand, so an example is small plain data.

>>> from tasks.visual_math import VisualMath
>>> task = VisualMath()
>>> example = task.load("train", limit=1)[0]
>>> print(example["question"])
How many more blue shapes than yellow shapes are there?
>>> print(task.messages(example)["completion"][0]["content"])
I count 4 blue shapes and 2 yellow shapes. 4 - 2 = 2. The answer is \boxed{2}.
>>> task.image(example).size
(112, 112)

Splits; the OOD splits are a ladder from the nearest shift to the farthest, ordered by the base's
and SFT's scores only (never DFT's): the near ones are measurable, so a difference in generalization
can show. Scores of the embedded tiny VLM / an SFT run (laptop preset, seed 0, the committed record
of the single-seed era) when the ladder was set:

* ``train`` (2000): colours red, blue, green, yellow; 1-4 shapes per colour; shapes one cell big.
* ``test`` (200): the train distribution, other scenes (base 7.0, SFT 36.0: off the ceiling).
* ``ood-layout`` (200): shapes drawn at 1.5 times the size, centred off the grid cells: the same
  counts in another look (base 5.0, SFT 35.0, the near rung).
* ``ood-colours`` (200): purple, orange, cyan: colours never asked about in training (the embedded
  VLM's pretraining captions name them) (base 2.0, SFT 32.5).
* ``ood-more-objects`` (200): 5-8 shapes per colour: counts above any seen in training (base 3.5,
  SFT 12.0).
* ``easy-vqa`` (the :mod:`tasks.easy_vqa` task, an OOD task of this one): real questions about
  another kind of picture, the far shift (0 for every model here; it stays as the far rung).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from tasks.base import Split, Task, load_generated
from tasks.math_grading import MathAnswerTask

if TYPE_CHECKING:
    from PIL import Image

SIZE = 112
CELL = 14  # one vision patch: a shape per cell keeps every object inside one patch
GRID = SIZE // CELL
RGB = {
    "red": (220, 30, 30),
    "blue": (30, 60, 220),
    "green": (30, 160, 50),
    "yellow": (230, 200, 20),
    "purple": (140, 40, 170),
    "orange": (245, 130, 20),
    "cyan": (20, 200, 210),
}
SEEN_COLOURS = ("red", "blue", "green", "yellow")
UNSEEN_COLOURS = ("purple", "orange", "cyan")
SHAPES = ("circle", "square", "triangle")
INSTRUCTION = "Put your final answer within \\boxed{}."

SPLITS = {  # name: (seed, size, colours, counts low-high, layout)
    "train": (11, 2000, SEEN_COLOURS, (1, 4), "grid"),
    "test": (12, 200, SEEN_COLOURS, (1, 4), "grid"),
    "ood-more-objects": (13, 200, SEEN_COLOURS, (5, 8), "grid"),
    "ood-colours": (14, 200, UNSEEN_COLOURS, (1, 4), "grid"),
    "ood-layout": (15, 200, SEEN_COLOURS, (1, 4), "large"),
}


def make_scene(rng: random.Random, colours: tuple[str, ...], counts: tuple[int, int], layout: str) -> dict:
    """A scene: which shape of which colour sits in which cell, plus a question about it."""
    chosen = rng.sample(colours, rng.choice((2, 3)))
    count = {colour: rng.randint(*counts) for colour in chosen}
    if layout == "large":  # bigger shapes take a 2 x 2 block of cells each
        blocks = [(x, y) for x in range(0, GRID, 2) for y in range(0, GRID, 2)]
        cells = rng.sample(blocks, sum(count.values()))
    else:
        cells = rng.sample([(x, y) for x in range(GRID) for y in range(GRID)], sum(count.values()))
    objects, at = [], 0
    for colour in chosen:
        for _ in range(count[colour]):
            objects.append({"colour": colour, "shape": rng.choice(SHAPES), "cell": list(cells[at])})
            at += 1
    a, b = chosen[0], chosen[1]
    kind = rng.choice(("one", "sum", "difference"))
    if kind == "difference" and count[a] == count[b]:
        kind = "sum"
    if kind == "difference" and count[a] < count[b]:
        a, b = b, a
    if kind == "one":
        question = f"How many {a} shapes are there?"
        solution = f"I count {count[a]} {a} shapes. The answer is \\boxed{{{count[a]}}}."
        answer = count[a]
    elif kind == "sum":
        question = f"How many {a} shapes and {b} shapes are there in total?"
        answer = count[a] + count[b]
        solution = (
            f"I count {count[a]} {a} shapes and {count[b]} {b} shapes. "
            f"{count[a]} + {count[b]} = {answer}. The answer is \\boxed{{{answer}}}."
        )
    else:
        question = f"How many more {a} shapes than {b} shapes are there?"
        answer = count[a] - count[b]
        solution = (
            f"I count {count[a]} {a} shapes and {count[b]} {b} shapes. "
            f"{count[a]} - {count[b]} = {answer}. The answer is \\boxed{{{answer}}}."
        )
    return {
        "objects": objects,
        "layout": layout,
        "question": question,
        "solution": solution,
        "answer": str(answer),
    }


def draw(scene: dict) -> Image.Image:
    """The picture of ``scene``: white background, each object in its cell."""
    from PIL import Image, ImageDraw  # the vision stack, only where a picture is drawn

    image = Image.new("RGB", (SIZE, SIZE), "white")
    pen = ImageDraw.Draw(image)
    for thing in scene["objects"]:
        x, y = thing["cell"]
        if scene["layout"] == "large":  # 1.5 cells wide, centred in its 2 x 2 block
            left, top, side = x * CELL + 3, y * CELL + 3, CELL * 3 // 2
        else:
            left, top, side = x * CELL + 2, y * CELL + 2, CELL - 4
        box = (left, top, left + side, top + side)
        colour = RGB[thing["colour"]]
        if thing["shape"] == "circle":
            pen.ellipse(box, fill=colour)
        elif thing["shape"] == "square":
            pen.rectangle(box, fill=colour)
        else:
            pen.polygon([(left + side / 2, top), (left, top + side), (left + side, top + side)], fill=colour)
    return image


def caption(scene: dict) -> str:
    """What is in the picture, colour by colour (the embedded VLM's pretraining text)."""
    counts: dict[str, dict[str, int]] = {}
    for thing in scene["objects"]:
        shapes = counts.setdefault(thing["colour"], {})
        shapes[thing["shape"]] = shapes.get(thing["shape"], 0) + 1
    parts = [f"{sum(shapes.values())} {colour} shapes" for colour, shapes in counts.items()]
    return "I see " + " and ".join(parts) + "."


class VisualMath(MathAnswerTask, Task):
    name = "visual-math"
    domain = "vlm"
    splits = (
        Split("train", "train", "2000 scenes, 4 colours, 1-4 shapes per colour"),
        Split("test", "test", "200 scenes of the train distribution"),
        # The OOD ladder, nearest shift first (the module docstring says why each exists).
        Split("ood-layout", "ood", "shapes 1.5 times larger, off the grid cells"),
        Split("ood-colours", "ood", "purple, orange, cyan: colours never asked about in training"),
        Split("ood-more-objects", "ood", "5-8 shapes per colour"),
    )
    max_new_tokens = 64
    ood_tasks = ("easy-vqa",)

    def load(self, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        return load_generated(self, self._generate, split, limit, key="key")

    def _generate(self, split: str, exclude: set[str]) -> list[dict[str, Any]]:
        seed, size, colours, counts, layout = SPLITS[split]
        rng = random.Random(seed)
        examples, seen = [], set()
        while len(examples) < size:
            scene = make_scene(rng, colours, counts, layout)
            key = repr((scene["objects"], scene["question"]))  # the same picture and question
            if key in seen or key in exclude:
                continue
            seen.add(key)
            examples.append({"id": f"{split}-{len(examples)}", "key": key, **scene})
        return examples

    def image(self, example: dict[str, Any]) -> Image.Image:
        return draw(example)

    def messages(self, example: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        text = f"{example['question']} {INSTRUCTION}"
        return {
            "prompt": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "image": self.image(example)},
                        {"type": "text", "text": text},
                    ],
                }
            ],
            "completion": [{"role": "assistant", "content": example["solution"]}],
        }
