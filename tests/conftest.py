"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded tiny backbone's tokenizer (ChatML), loaded once per session."""
    from harness.models import load_tokenizer

    return load_tokenizer("/tmp/smoke-base")
