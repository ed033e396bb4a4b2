# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults in the package layer, on output captured in the faults scenario's Debian 12 container.

An apt-get killed mid-install leaves dpkg interrupted: the next install repairs it
('dpkg --configure -a') and retries once. A held dpkg lock fails after lock_timeout
with the lock and its holder named.
"""

from __future__ import annotations

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult
from mlhost_testlib import captured, fixture_text

INSTALL = ["apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef",
           "-o", "Dpkg::Options::=--force-confold", "--no-install-recommends", "install", "patch"]
REPAIR = ["dpkg", "--force-confdef", "--force-confold", "--configure", "-a"]


class SequenceRunner:
    """Each command answers with the next of its results, in order; any other command fails the test."""

    def __init__(self, script: list[tuple[list[str], tuple[int, str, str]]]) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], check: bool = True, **kwargs: object) -> CommandResult:
        self.calls.append(list(argv))
        assert self.script, f"unexpected command: {argv}"
        expected, result = self.script.pop(0)
        assert argv == expected, f"ran {argv}, expected {expected}"
        return CommandResult(*result)


def test_interrupted_dpkg_is_recognised_in_captured_output():
    rc, out, err = captured("apt/install-interrupted-debian12")
    assert rc == 100
    assert _packages.dpkg_interrupted(err, out)
    assert not _packages.dpkg_interrupted(*reversed(captured("apt/install-locked-debian12")[1:]))
    assert not _packages.dpkg_interrupted("E: Unable to locate package nosuch\n")


def test_interrupted_packages_count_as_not_installed():
    # Captured after the kill: patch unpacked (iU), the slow package half-configured (iF).
    state = _packages.parse_dpkg_query(fixture_text("dpkg/query-interrupted-debian12.txt"),
                                       {"patch": None, "mlhost-faults-slow": None})
    assert state == {"patch": None, "mlhost-faults-slow": None}
    audit = fixture_text("dpkg/audit-interrupted-debian12.txt")
    assert "unpacked but not yet configured" in audit and "half configured" in audit


def test_install_repairs_an_interrupted_dpkg_then_retries_once():
    rc, out, err = captured("apt/install-interrupted-debian12")
    runner = SequenceRunner([
        (INSTALL, (rc, out, err)),
        (REPAIR, (0, "Setting up mlhost-faults-slow (1.0) ...\nSetting up patch (2.7.6-7) ...\n", "")),
        (INSTALL, (0, "patch is already the newest version (2.7.6-7).\n", "")),
    ])
    apt = _packages.Apt(runner)
    apt.install(["patch"])
    assert runner.calls == [INSTALL, REPAIR, INSTALL]
    assert apt.repaired


def test_a_failed_repair_stops_with_what_to_do():
    rc, out, err = captured("apt/install-interrupted-debian12")
    runner = SequenceRunner([
        (INSTALL, (rc, out, err)),
        (REPAIR, (1, "", "dpkg: error processing package patch (--configure):\n"
                         " installed patch package post-installation script subprocess returned error exit status 1\n")),
    ])
    with pytest.raises(_packages.PackageError) as exc:
        _packages.Apt(runner).install(["patch"])
    assert "dpkg --configure -a" in exc.value.msg and "dpkg --audit" in exc.value.msg
    assert runner.calls == [INSTALL, REPAIR]  # no second install after a failed repair


def test_no_repair_for_other_failures():
    runner = SequenceRunner([(INSTALL, (100, "", "E: Unable to locate package patch\n"))])
    with pytest.raises(_packages.PackageError) as exc:
        _packages.Apt(runner).install(["patch"])
    assert runner.calls == [INSTALL] and "Unable to locate package patch" in exc.value.msg


def test_lock_holder_from_captured_output():
    rc, out, err = captured("apt/install-locked-debian12")
    assert rc == 100
    assert _packages.lock_holder(err, out) == ("/var/lib/dpkg/lock-frontend", "2589", "python3")
    # Only stderr's summary line (no holder): the lock is still named.
    assert _packages.lock_holder(err) == ("/var/lib/dpkg/lock-frontend", None, None)
    assert _packages.lock_holder("E: Unable to locate package x\n") is None


def test_held_lock_fails_with_lock_holder_and_timeout():
    rc, out, err = captured("apt/install-locked-debian12")
    argv = list(INSTALL)
    argv[4] = "DPkg::Lock::Timeout=5"
    runner = SequenceRunner([(argv, (rc, out, err))])
    with pytest.raises(_packages.PackageError) as exc:
        _packages.Apt(runner, lock_timeout=5).install(["patch"])
    msg = exc.value.msg
    assert "/var/lib/dpkg/lock-frontend" in msg and "process 2589 (python3)" in msg
    assert "waited 5 s" in msg and "lock_timeout" in msg and "Nothing was installed" in msg
    assert runner.calls == [argv]  # a held lock is not an interrupted dpkg: no repair
