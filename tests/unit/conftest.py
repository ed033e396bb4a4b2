# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest fixtures shared by the unit tests."""

from __future__ import annotations

import pathlib
import typing as t

import pytest
from mlhost_testlib import build_tree


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> t.Callable[[dict[str, t.Any]], pathlib.Path]:
    """Build a fixture root tree; returns its path."""

    def make(files: dict[str, t.Any]) -> pathlib.Path:
        return build_tree(tmp_path / "root", files)

    return make
