# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the unit tests: fixture trees and a stand-in for the one command door."""

from __future__ import annotations

import hashlib
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


class FakeRunner:
    """Stands in for ``_run.Runner`` in package tests: only the exact argument lists given may run.

    An argv not in ``responses`` fails the test (the code ran a command it should not have);
    a response of None stands for a program that is not installed (the door returns None);
    a list of responses answers the same argv with each in turn (the last one from then on).
    """

    def __init__(self, responses: dict[tuple[str, ...], tuple[int, str, str]], programs: dict[str, str] | None = None) -> None:
        self.responses = dict(responses)
        self.programs = dict(programs or {})
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []

    def find(self, name: str, opt_dirs: list[str] | None = None) -> str | None:
        """Programs the test says exist (name -> path); every other is missing."""
        return self.programs.get(name)

    def run(self, argv: list[str], check: bool = True, data: str | None = None, timeout: int | None = None,
            env: dict[str, str] | None = None, cwd: str | None = None) -> CommandResult | None:
        self.calls.append(list(argv))
        self.envs.append(dict(env or {}))
        key = tuple(argv)
        if key not in self.responses:
            raise AssertionError(f"unexpected command: {argv}")
        answer = self.responses[key]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if answer is None:
            return None
        return CommandResult(*answer)


def captured(name: str) -> tuple[int, str, str]:
    """(rc, stdout, stderr) of a command captured as fixtures/<name>.{rc,out,err}."""
    rc_file, out_file, err_file = (FIXTURES / f"{name}.{ext}" for ext in ("rc", "out", "err"))
    return (
        int(rc_file.read_text().strip()) if rc_file.exists() else 0,
        out_file.read_text(encoding="utf-8") if out_file.exists() else "",
        err_file.read_text(encoding="utf-8") if err_file.exists() else "",
    )


class HostModule:
    """Stands in for AnsibleModule behind a ``_module.Host``: params, check/diff mode, warnings and file attributes recorded."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> None:
        self.params = {"proxy_env": {}, **params}
        self.check_mode = check_mode
        self._diff = diff
        self._name = "test"
        self.warnings: list[str] = []
        self.attributes: list[tuple[str, str, t.Any]] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def get_bin_path(self, name: str, required: bool = False, opt_dirs: list[str] | None = None) -> str | None:
        return None

    def set_owner_if_different(self, path: str, owner: str, changed: bool, diff: t.Any = None, expand: bool = True) -> bool:
        self.attributes.append(("owner", path, owner))
        return True

    def set_group_if_different(self, path: str, group: str, changed: bool, diff: t.Any = None, expand: bool = True) -> bool:
        self.attributes.append(("group", path, group))
        return True

    def set_mode_if_different(self, path: str, mode: t.Any, changed: bool, diff: t.Any = None, expand: bool = True) -> bool:
        self.attributes.append(("mode", path, mode))
        return True


def make_host(params: dict[str, t.Any], runner: t.Any = None, check_mode: bool = False, sysroot: t.Any = None,
              fetch: t.Callable[[str], bytes] | None = None, diff: bool = False, diff_mode: bool = False,
              module: t.Any = None) -> t.Any:
    """A ``_module.Host`` for a worker under test: ``params`` as given, ``runner`` (a FakeRunner; none: no command may
    run) as the door, ``sysroot`` the tree it reads, ``fetch`` (url -> bytes) its downloads (none: a download fails the
    test), ``module`` a stand-in of the test's own (default HostModule)."""
    import io  # pylint: disable=import-outside-toplevel

    from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import Host  # pylint: disable=import-outside-toplevel

    host = Host(module or HostModule(params, check_mode, diff or diff_mode), runner if runner is not None else FakeRunner({}), sysroot)

    def download(url: str, timeout: int = 60, ca_path: str | None = None) -> t.Any:
        if fetch is None:
            raise AssertionError(f"unexpected download: {url}")
        return io.BytesIO(fetch(url))

    host.fetch = download  # type: ignore[method-assign]
    return host


def run_worker(worker_cls: t.Any, host: t.Any) -> dict[str, t.Any]:
    """What ``_module.execute`` returns for ``worker_cls`` on ``host``, unmasked: plan, then apply unless check mode.

    ``changed`` and ``diff`` come from the plan; ``warnings`` are the plan's; a ModuleError propagates."""
    worker = worker_cls(host)
    plan = worker.plan()
    result = dict(plan.result)
    if plan.changed and not host.check_mode:
        result.update(worker.apply(plan) or {})
    result["changed"] = plan.changed
    result["diff"] = plan.diff
    result["warnings"] = list(plan.warnings)
    result["commands"] = [" ".join(argv) for argv in host.runner.calls]
    return result


def snapshot(top: pathlib.Path) -> dict[str, str]:
    """Every path below ``top`` with its kind, mode, mtime and content (sha256 or link target), and top's own mtime:
    equal before and after a refused case means the case changed nothing there."""
    out = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        kind = "l" if path.is_symlink() else ("d" if path.is_dir() else "f")
        body = os.readlink(path) if kind == "l" else (hashlib.sha256(path.read_bytes()).hexdigest() if kind == "f" else "")
        out[str(path.relative_to(top))] = f"{kind} {oct(st.st_mode)} {st.st_mtime_ns} {body}"
    out["."] = str(top.stat().st_mtime_ns)
    return out
