"""Finding the program in a completion (a table of the shapes models write) and unbiased pass@k."""

from __future__ import annotations

import pytest

from tasks.code_grading import extract_code

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
