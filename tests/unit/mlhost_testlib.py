# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the unit tests: fixture trees and a stand-in for the one command door."""

from __future__ import annotations

import os
import pathlib
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class Link(t.NamedTuple):
    target: str


def build_tree(root: pathlib.Path, files: dict[str, t.Any]) -> pathlib.Path:
    """Create ``files`` (relative path -> str | bytes | Link | None for a directory) below root."""
    for rel, content in files.items():
        path = root / rel.lstrip("/")
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(content.target, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
            if rel.rsplit("/", 1)[-1].startswith(("python3", "nvcc", "conda")):
                path.chmod(0o755)
    return root


class FakeRun:
    """Stands in for the one door (Runner.run with check=False): exact argv -> result.

    A command not in ``responses`` is a missing program (None), and every call is recorded.
    """

    def __init__(self, responses: dict[tuple[str, ...], tuple[int, str, str]] | None = None) -> None:
        self.responses = dict(responses or {})
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> CommandResult | None:
        self.calls.append(list(argv))
        found = self.responses.get(tuple(argv))
        return CommandResult(*found) if found else None
