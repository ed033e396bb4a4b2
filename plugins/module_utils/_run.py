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
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    ) -> CommandResult | None:
        """Run ``argv``; ``argv[0]`` is a program name or an absolute path.

        Returns None when the program is missing and ``check`` is false;
        fails the module with the command, rc, stdout and stderr when the
        command fails and ``check`` is true. ``env`` adds variables (secrets
        such as index URLs with tokens travel there, never in argv).
        """
        program = argv[0] if argv[0].startswith("/") else self.find(argv[0])
        if program is None:
            if check:
                self.module.fail_json(
                    msg=f"The program {argv[0]!r} was not found on the host's PATH. Install it, then rerun.",
                    cmd=argv,
                )
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
        rc, out, err = self.module.run_command(cmd, check_rc=False, data=data, environ_update=environ, cwd=cwd)
        if check and rc != 0:
            self.module.fail_json(
                msg=f"Command {' '.join(argv)!r} failed with rc={rc}: {(err or out).strip()[-2000:]}",
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
    bad = sorted(str(name) for name in proxy_env if not ENV_NAME.match(str(name)))
    if bad:
        module.fail_json(
            msg=f"proxy_env: {', '.join(bad)} is not an environment variable name; give names such as http_proxy, "
            "https_proxy and no_proxy. Nothing was changed."
        )
    for name, value in proxy_env.items():
        os.environ[str(name)] = "" if value is None else str(value)
