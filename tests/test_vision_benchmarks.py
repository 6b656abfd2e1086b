"""The paper's vision benchmarks and WeThink as tasks, offline: rows in each dataset's real schema
(the hub's column names; pictures as paths beside a JSONL, as the benchmarks' GitHub files write
them, or as image bytes in a parquet copy), the multiple-choice grader on realistic answers, and
bad rows named by file and row. Nothing here touches the network."""

from __future__ import annotations

import io

import datasets
import pytest
from conftest import write_jsonl
from PIL import Image

import tasks
from harness.data.rows import check_row, load_split
from harness.errors import DataError
from tasks.choice_grading import chosen_letter, grade_choice, options_in

MATHVERSE_QUESTION = (
    "As shown in the figure, AB is the diameter of ⊙O, and points C and D are on ⊙O. If ∠ABD = 50.0, "
    "then the degree of ∠BCD is ()\nChoices:\nA:30°\nB:35°\nC:40°\nD:45°"
)
OPTIONS = options_in(MATHVERSE_QUESTION)

# (completion a model could write, gold, expected letter chosen or None, score)
CHOICES = [
    ("∠BCD = 90° - 50° = 40°. The answer is $\\boxed{C}$.", "C", "C", 1.0),
    ("So ∠BCD = 40°, the answer is \\boxed{(C)}.", "C", "C", 1.0),
    ("Thus $\\boxed{C: 40°}$", "C", "C", 1.0),
    ("Therefore ∠BCD is $\\boxed{40°}$.", "C", "C", 1.0),  # the option's text in the box
    ("Hence the answer is B.", "C", "B", 0.0),
    ("Answer: (C)", "C", "C", 1.0),
    ("**Answer:** **D**", "C", "D", 0.0),
    ("The correct option is C because the inscribed angle is half the arc.", "C", "C", 1.0),
    ("<Thought process>: ∠ADB = 90° ... <Answer>: C", "C", "C", 1.0),  # WeMath's template
    ("Let me compute.\n(C) 40°", "C", "C", 1.0),
    ("C", "C", "C", 1.0),
    ("the inscribed angle subtends the same arc, so it is 40°", "C", "C", 1.0),  # option text at the end
    ("I think the answer is a triangle.", "C", None, 0.0),  # "a" is not an option letter
    ("I cannot determine it from the figure.", "C", None, 0.0),
    ("The answer is $\\boxed{F}$.", "C", "F", 0.0),  # a letter that is no option: wrong, not unparsed
    ("First I thought A, but the answer is $\\boxed{C}$.", "C", "C", 1.0),  # the box wins
    ("The answer is C, not option D.", "C", "C", 1.0),  # an "answer is" statement over a mention
    ("The answer is $C$.", "C", "C", 1.0),
    ("So ∠BCD = 140°", "C", None, 0.0),  # ends with "40°" but not as a whole token
]


@pytest.mark.parametrize(("completion", "gold", "letter", "score"), CHOICES)
def test_multiple_choice_grading_table(completion, gold, letter, score):
    assert chosen_letter(completion, OPTIONS) == letter
    graded = grade_choice(gold, completion, OPTIONS)
    assert graded.score == score
    assert graded.verdict == ("no-answer" if letter is None else "correct" if score else "wrong")


def test_a_boxed_answer_that_is_no_option_is_wrong_and_decimals_count():
    numbers = {"A": "3", "B": "4", "C": "5", "D": "6"}
    graded = grade_choice("C", "The sum is $\\boxed{15}$.", numbers)  # not "5" (C) by its last digit
    assert (graded.score, graded.verdict, graded.answer) == (0.0, "wrong", "15")
    decimals = {"A": "1.5", "B": "15"}
    assert chosen_letter("\\boxed{15}", decimals) == "B" and chosen_letter("\\boxed{1.5}", decimals) == "A"


def test_gold_as_option_text_and_semicolon_options():
    # MathVista stores the option's text as the gold answer.
    options = {"A": "135°", "B": "145°", "C": "155°"}
    assert grade_choice("145°", "The angle is 145°, option (B).\nAnswer: B", options).score == 1.0
    wemath = options_in("A. 300, 400;B. 400, 300;C. 200, 500;D. No correct answer")
    assert wemath == {"A": "300, 400", "B": "400, 300", "C": "200, 500", "D": "No correct answer"}
    assert grade_choice("D", "None fits. \\boxed{D}", wemath).score == 1.0


def write_png(path, colour="red"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path)


def png_bytes(colour="blue") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


MATHVERSE = [
    {
        "sample_index": "1",
        "problem_index": "1",
        "problem_version": "Text Dominant",
        "question": MATHVERSE_QUESTION,
        "image": "images_version_1-4/image_1.png",
        "answer": "C",
        "question_type": "multi-choice",
        "metadata": {
            "split": "testmini",
            "source": "GeoQA",
            "subject": "Plane Geometry",
            "subfield": "Angle",
        },
        "query_wo": "Please directly answer the question ...",
        "query_cot": "Please first conduct reasoning ...",
        "question_for_eval": MATHVERSE_QUESTION,
    },
    {
        "sample_index": "6",
        "problem_index": "2",
        "problem_version": "Vision Only",
        "question": "",
        "image": "images_version_5/image_2.png",
        "answer": "B",
        "question_type": "multi-choice",
        "metadata": {},
        "query_wo": "According to the question shown in the image, ...",
        "query_cot": "...",
        "question_for_eval": "",
    },
    {
        "sample_index": "11",
        "problem_index": "3",
        "problem_version": "Text Lite",
        "question": "Find the length of AC.",
        "image": "images_version_1-4/image_3.png",
        "answer": "14",
        "question_type": "free-form",
        "metadata": {},
        "query_wo": "...",
        "query_cot": "...",
        "question_for_eval": "Find the length of AC.",
    },
]


def test_mathverse_from_a_jsonl_copy_with_picture_paths(data_dir):
    for row in MATHVERSE:
        write_png(data_dir / row["image"])
    write_jsonl(data_dir / "mathverse.jsonl", MATHVERSE)
    task = tasks.get("mathverse")
    examples = task.load("test")
    assert [e["id"] for e in examples] == ["mathverse/1", "mathverse/6", "mathverse/11"]
    assert examples[0]["image"] == str(data_dir / "images_version_1-4/image_1.png")
    assert examples[0]["options"]["C"] == "40°" and set(examples[1]["options"]) == set("ABCDE")
    assert examples[2]["options"] == {}
    row = task.messages(examples[0])
    check_row(row, "mathverse")
    assert row["prompt"][0]["content"][1]["text"].endswith("letter of the correct option within \\boxed{}.")
    graded = task.grade(
        [
            (examples[0], "Since AB is a diameter, ∠ADB = 90°, so ∠BCD = ∠BAD = 40°. \\boxed{C}"),
            (examples[1], "Reading the picture, the answer is \\boxed{B}."),
            (examples[2], "By Pythagoras, $AC = \\sqrt{196} = \\boxed{14}$."),
            (examples[2], "$AC = \\boxed{12}$"),
            (examples[0], "<think>inscribed angles</think><answer>C</answer>"),  # WeThink's format
        ]
    )
    assert [g["score"] for g in graded] == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert [g["verdict"] for g in graded] == ["correct", "correct", "correct", "wrong", "correct"]


def test_mathvision_from_a_parquet_copy_with_image_bytes(data_dir):
    rows = {
        "id": ["1", "2"],
        "question": ["<image1>\nWhich piece completes the figure?", "How many edges does the solid have?"],
        "options": [["A", "B", "C", "D", "E"], []],
        "image": ["images/1.jpg", "images/2.jpg"],
        "decoded_image": [{"bytes": png_bytes(), "path": None}, {"bytes": png_bytes("green"), "path": None}],
        "answer": ["C", "12"],
        "solution": [None, None],
        "level": [2, 3],
        "subject": ["combinatorics", "solid geometry"],
    }
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "options": datasets.Sequence(datasets.Value("string")),
            "image": datasets.Value("string"),
            "decoded_image": datasets.Image(),
            "answer": datasets.Value("string"),
            "solution": datasets.Value("string"),
            "level": datasets.Value("int64"),
            "subject": datasets.Value("string"),
        }
    )
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(data_dir / "mathvision.parquet"))
    task = tasks.get("mathvision")
    first, second = task.load("test")
    assert first["image"].size == (32, 32) and "<image1>" not in first["question"]
    assert first["question"].endswith("Choices: A. A B. B C. C D. D E. E")
    assert task.score(first, "The piece that fits is \\boxed{C}.") == 1.0
    assert task.score(second, "A cube has $\\boxed{12}$ edges.") == 1.0
    assert task.score(second, "It has \\boxed{8} edges.") == 0.0


def test_wemath_and_mathvista_rows(data_dir):
    write_png(data_dir / "2steps/image/1-1.png")
    wemath = {
        "ID": "2steps_1",
        "split": "testmini",
        "knowledge concept": "Properties of Parallelograms",
        "question": "As shown in the figure, the perimeter of the parallelogram is 20. What is AB?",
        "option": "A. 4;B. 6;C. 8;D. 10;E. No correct answer",
        "answer": "B",
        "image_path": "2steps/image/1-1.png",
        "key": "2steps_1",
        "question number": 1,
        "knowledge concept description": "...",
    }
    write_jsonl(data_dir / "wemath.jsonl", [wemath])
    [example] = tasks.get("wemath").load("test")
    assert example["options"]["E"] == "No correct answer" and "Options: A. 4;B. 6" in example["question"]
    assert tasks.get("wemath").score(example, "<Thought process>: AB + BC = 10 ... <Answer>: B") == 1.0
    write_png(data_dir / "images/1.jpg")
    mathvista = [
        {
            "pid": "1",
            "question": "When a spring does work on an object, we cannot find the work by ...",
            "image": "images/1.jpg",
            "choices": None,
            "unit": None,
            "precision": 1.0,
            "answer": "1.2",
            "question_type": "free_form",
            "answer_type": "float",
            "metadata": {},
            "query": "Hint: ...",
        },
        {
            "pid": "2",
            "question": "What is the measure of angle B?",
            "image": "images/1.jpg",
            "choices": ["135°", "145°", "155°"],
            "unit": None,
            "precision": None,
            "answer": "145°",
            "question_type": "multi_choice",
            "answer_type": "text",
            "metadata": {},
            "query": "Hint: ...",
        },
    ]
    write_jsonl(data_dir / "mathvista.jsonl", mathvista)
    free, choice = tasks.get("mathvista").load("test")
    assert tasks.get("mathvista").score(free, "The work is $\\boxed{1.20}$ J.") == 1.0
    assert "(B) 145°" in choice["question"]
    assert tasks.get("mathvista").score(choice, "So ∠B = 145°. \\boxed{B}") == 1.0
    assert tasks.get("mathvista").score(choice, "\\boxed{145°}") == 1.0
    assert tasks.get("mathvista").score(choice, "\\boxed{A}") == 0.0


def test_wethink_trains_on_the_refined_reasoning_and_needs_its_pictures(data_dir):
    row = {
        "problem": "What is the total of the two numbers shown?",
        "answer": "7",
        "category": "math",
        "abilities": "counting",
        "refined_cot": "<think>The picture shows 3 and 4; 3 + 4 = 7.</think>\n<answer>7</answer>",
        "image_path": "coco/train2017/000000000009.jpg",
        "reward": "mathverify",
    }
    folder = data_dir / "wethink"
    folder.mkdir()
    write_jsonl(folder / "WeThink_Multimodal_Reasoning_120K.jsonl", [row])
    with pytest.raises(DataError, match=r"picture .*000000000009.jpg not found.*LLaVA-CoT-100k"):
        load_split(tasks.get("wethink"), "train")
    write_png(folder / row["image_path"])
    task = tasks.get("wethink")
    [example] = task.load("train")
    messages = task.messages(example)
    check_row(messages, "wethink")
    assert messages["completion"][0]["content"] == row["refined_cot"]
    assert task.ood_tasks == ("mathverse", "mathvision", "wemath") and task.eval_splits == []


def test_bad_rows_name_the_file_and_row(data_dir):
    write_png(data_dir / "images/1.jpg")
    row = {"pid": "9", "question": "Which?", "image": "images/1.jpg", "choices": ["1", "2"], "answer": "3"}
    write_jsonl(data_dir / "mathvista.jsonl", [row])
    with pytest.raises(
        DataError, match=r"mathvista.jsonl row 1: mathvista's answer '3' is none of its choices"
    ):
        load_split(tasks.get("mathvista"), "test")
    write_jsonl(data_dir / "wemath.jsonl", [{"question": "q", "answer": "A", "image_path": "x.png"}])
    with pytest.raises(DataError, match=r"wemath.jsonl row 1: wemath needs the field 'option'"):
        load_split(tasks.get("wemath"), "test")
    with pytest.raises(DataError, match=r"\$HARNESS_DATA=.*AI4Math/MathVerse \(testmini\), split testmini"):
        load_split(tasks.get("mathverse"), "test")
