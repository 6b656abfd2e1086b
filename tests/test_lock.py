"""The locked environment: constraints.txt pins every package, and this environment is that one.

Every nox session (CI included) installs with ``-c constraints.txt``; a test run in an environment
that drifted from it fails here, naming the packages, instead of producing numbers that the
committed records cannot reproduce. After a deliberate ``nox -s lock`` the reference records are
regenerated (``nox -s reference -- --redo``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from harness import environment

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"


def test_every_declared_dependency_is_pinned_in_the_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = environment.read_lock(LOCK)
    names = {
        environment.normalize(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
        for requirement in declared
    }
    missing = sorted(names - set(pins))
    assert not missing, f"declared in pyproject.toml but not in constraints.txt (run nox -s lock): {missing}"
    assert pins["torch"] == "2.14.1" and pins["transformers"]  # exact versions, not ranges


def test_this_environment_is_the_locked_one():
    state = environment.lock_state(LOCK)
    assert state is not None and re.fullmatch(r"[0-9a-f]{16}", state["sha256"])
    assert not state["differs"], (
        "installed packages differ from constraints.txt (install with -c constraints.txt, or "
        f"regenerate the lock deliberately with nox -s lock): {state['differs']}"
    )


def test_a_drifted_environment_is_named_package_by_package(tmp_path):
    lock = tmp_path / "constraints.txt"
    lock.write_text("# header\ntorch==0.0.1\nno-such-package-anywhere==1.0\n")
    state = environment.lock_state(lock)
    # A locked package that is not installed is no deviation (ruff is only in the lint session).
    assert state["differs"] == {"torch": f"{environment.version('torch')} (locked 0.0.1)"}
    assert environment.lock_state(tmp_path / "missing.txt") is None
    lock.write_text("harness @ file:///somewhere\n")  # what pip freeze writes for a local install
    assert "expected name==version" in environment.lock_state(lock)["error"]  # recorded, not raised


@pytest.mark.parametrize("line", ["torch>=2.0", "==1.0", "torch=="])
def test_a_lock_line_that_is_not_an_exact_pin_is_refused(tmp_path, line):
    lock = tmp_path / "constraints.txt"
    lock.write_text(f"numpy==2.0\n{line}\n")
    with pytest.raises(
        ValueError, match=f"constraints.txt:2: expected name==version, got '{re.escape(line)}'"
    ):
        environment.read_lock(lock)
