# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The one door to the shell for every mlinfra.mlhost module.

PRIVATE to the collection: no compatibility promise outside it.

Every command is an argument list (never a shell string), found with
``get_bin_path``, run with a fixed C locale, ``DEBIAN_FRONTEND=noninteractive``
and, where given, a time limit. Facts readers ask with ``check=False`` and get
``None`` back for a missing program, so that a missing tool is a null fact,
not a failure.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

FIXED_ENV = {
    "LANG": "C",
    "LC_ALL": "C",
    "LANGUAGE": "C",
    "DEBIAN_FRONTEND": "noninteractive",
}


# The proxy reaches the modules as an option, not through the task's ``environment`` keyword: ansible-core prints
# a task's environment in its command line at -vvv, password included; a module option travels inside the module's
# payload and, being no_log, is censored in the invocation shown. Modules that download take it (doc fragment
# mlinfra.mlhost.proxy, action group mlinfra.mlhost.proxied for module_defaults).
PROXY_OPTIONS: dict[str, dict[str, t.Any]] = {
    "proxy_env": {"type": "dict", "default": {}, "no_log": True},
}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CommandResult(t.NamedTuple):
    rc: int
    out: str
    err: str


class Runner:
    """Runs commands for a module, through ``module.run_command``."""

    def __init__(self, module: t.Any, timeout: int | None = None) -> None:
        self.module = module
        self.timeout = timeout
        self.calls: list[list[str]] = []
        # Nothing the collection writes may be group- or world-writable, whatever umask the task inherited:
        # under umask 0, os.makedirs made intermediate directories 0777 (found by tests/unit/test_security.py).
        os.umask(os.umask(0o022) | 0o022)
        apply_proxy_env(module)

    def find(self, name: str, opt_dirs: list[str] | None = None) -> str | None:
        return self.module.get_bin_path(name, required=False, opt_dirs=opt_dirs or [])

    def run(
        self,
        argv: list[str],
        check: bool = True,
        data: str | None = None,
        timeout: int | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        pass_fds: t.Sequence[int] = (),
    ) -> CommandResult | None:
        """Run ``argv``; ``argv[0]`` is a program name or an absolute path.

        Returns None when the program is missing and ``check`` is false;
        fails the module with the command, rc, stdout and stderr when the
        command fails and ``check`` is true. ``env`` adds variables (secrets
        such as index URLs with tokens travel there, never in argv). ``pass_fds``: descriptors the command keeps open
        (a package manager's status output, _progress.py).
        """
        program = argv[0] if argv[0].startswith("/") else self.find(argv[0])
        if program is None:
            if check:
                raise ModuleError(f"The program {argv[0]!r} was not found on the host's PATH. Install it, then rerun.", cmd=argv)
            return None
        cmd = [program] + list(argv[1:])
        limit = timeout if timeout is not None else self.timeout
        if limit:
            timeout_bin = self.find("timeout")
            if timeout_bin:
                cmd = [timeout_bin, "-k", "5", str(limit)] + cmd
        self.calls.append(cmd)
        environ = dict(FIXED_ENV)
        environ.update(env or {})
        extra: dict[str, t.Any] = {"pass_fds": list(pass_fds)} if pass_fds else {}
        rc, out, err = self.module.run_command(cmd, check_rc=False, data=data, environ_update=environ, cwd=cwd, **extra)
        if check and rc != 0:
            raise ModuleError(
                f"Command {' '.join(argv)!r} failed with rc={rc}: {(err or out).strip()[-2000:]}",
                cmd=cmd,
                rc=rc,
                stdout=out,
                stderr=err,
            )
        return CommandResult(rc, out, err)


def apply_proxy_env(module: t.Any) -> None:
    """Put the module's ``proxy_env`` option into its environment: its commands and its own downloads
    (``open_url`` reads the proxy variables) see it. A name that is no variable name fails before anything runs."""
    params = getattr(module, "params", None)
    proxy_env = params.get("proxy_env") if isinstance(params, dict) else None
    if not proxy_env:
        return
    bad = sorted(repr(str(name)) for name in proxy_env if not ENV_NAME.fullmatch(str(name)))
    if bad:
        raise ModuleError(
            f"proxy_env: {', '.join(bad)} is not an environment variable name; give names such as http_proxy, "
            "https_proxy and no_proxy. Nothing was changed."
        )
    for name, value in proxy_env.items():
        text = "" if value is None else str(value)
        problem = proxy_value_problem(str(name), text)
        if problem:
            raise ModuleError(f"proxy_env: {name} {problem} Nothing was changed.")
    for name, value in proxy_env.items():
        os.environ[str(name)] = "" if value is None else str(value)


_PROXY_URL = re.compile(r"(?:(?:https?|socks5h?|socks4a?)://)?(?:[^\s/@]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?/?")


def proxy_value_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be the proxy variable ``name`` (None when it can). The value itself is never quoted."""
    if "\0" in value or "\n" in value or "\r" in value:
        return "holds a NUL byte or a line break; give one URL such as http://proxy.example.com:3128."
    if not name.lower().endswith("_proxy") or name.lower() == "no_proxy" or not value:
        return None
    if not _PROXY_URL.fullmatch(value):
        return (
            "is not a proxy URL: give scheme://host:port, such as http://proxy.example.com:3128 "
            "(http, https or socks5; user:password@ before the host if the proxy needs them)."
        )
    return None
