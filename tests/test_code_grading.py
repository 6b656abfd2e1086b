"""Finding the program in a completion (a table of the shapes models write) and unbiased pass@k."""

from __future__ import annotations

import itertools
import math

import pytest

from tasks.code_grading import extract_code, pass_at_k

# (completion, entry point, expected program or None), one comment each.
EXTRACTIONS = [
    # the format the chat tasks ask for
    ("```python\ndef f(x):\n    return x\n```", "f", "def f(x):\n    return x\n"),
    # prose around the block, language tag `py`
    (
        "Sure! Here is the code:\n```py\ndef f(x):\n    return 1\n```\nIt returns 1.",
        "f",
        "def f(x):\n    return 1\n",
    ),
    # a bare fence
    ("```\ndef f(x):\n    return 2\n```", "f", "def f(x):\n    return 2\n"),
    # cut off by the token budget: the fence never closes
    ("```python\ndef f(x):\n    return [y for y in x", "f", "def f(x):\n    return [y for y in x"),
    # an example call first, then the definition: the block that defines the entry point wins
    (
        "```python\nprint(f(3))\n```\n```python\ndef f(x):\n    return x\n```",
        "f",
        "def f(x):\n    return x\n",
    ),
    # no block defines it: the longest Python block
    ("```python\nx = 1\n```\n```python\nimport os\ny = 2\n```", "g", "import os\ny = 2\n"),
    # a shell block is not the program
    ("```bash\npip install numpy\n```\n```python\nimport numpy\n```", "f", "import numpy\n"),
    # no fence at all: from the first definition or import
    ("The answer:\ndef f(x):\n    return x * 2", "f", "def f(x):\n    return x * 2"),
    (
        "from math import sqrt\ndef f(x):\n    return sqrt(x)",
        "f",
        "from math import sqrt\ndef f(x):\n    return sqrt(x)",
    ),
    # indented fence (inside a list in markdown)
    ("1. Code:\n   ```python\n   def f(x):\n       return x\n   ```", "f", "   def f(x):\n       return x\n"),
    # prose only, arithmetic, an empty block: no code
    ("I am not sure how to do this.", "f", None),
    ("2 + 3 = 5. The answer is \\boxed{5}.", "f", None),
    ("```python\n\n```", "f", None),
]


@pytest.mark.parametrize(("completion", "entry_point", "expected"), EXTRACTIONS)
def test_extract_code(completion, entry_point, expected):
    assert extract_code(completion, entry_point) == expected


def test_pass_at_k_matches_the_definition_by_enumeration():
    # pass@k is the fraction of the C(n, k) subsets of samples that hold at least one pass.
    for n, c in [(5, 0), (5, 1), (5, 2), (6, 6), (10, 3)]:
        samples = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(samples, k))
            exact = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(exact)


def test_pass_at_1_is_the_pass_fraction_and_the_bounds_hold():
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)
    assert pass_at_k(16, 0, 10) == 0.0 and pass_at_k(16, 7, 10) == 1.0
    assert pass_at_k(200, 1, 10) == pytest.approx(1 - math.comb(199, 10) / math.comb(200, 10))


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)
