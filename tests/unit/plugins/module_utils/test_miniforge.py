# SPDX-License-Identifier: GPL-3.0-or-later
"""miniforge: refusals, the managed .condarc, and the checksum / nothing-left-behind paths.

The install tests run molecule/conda's installer STAND-IN for real with bash in a
temp directory (the real Miniforge installer cannot be downloaded here).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import unittest.mock

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _miniforge, _ownership
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult
from mlhost_testlib import make_host, run_worker

STANDIN = pathlib.Path(__file__).resolve().parents[4] / "molecule" / "conda" / "files" / "miniforge-standin.sh"


def params(tmp_path, **overrides):
    base = {"prefix": str(tmp_path / "opt" / "miniforge3"), "installer": str(tmp_path / "inst.sh"), "sha256": None,
            "version": None, "channels": ["conda-forge"], "channel_alias": None, "custom_channels": None,
            "proxy_servers": None, "ssl_verify": "false", "owner": None, "group": None, "mode": None, "timeout": 60,
            "state": "present"}
    base.update(overrides)
    return base


class BashRunner:
    """Runs commands for real (only bash and the installer are run by these tests)."""

    def __init__(self):
        self.calls = []

    def run(self, argv, check=True, data=None, timeout=None, env=None, cwd=None):
        self.calls.append(list(argv))
        proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60, check=False)
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def installer(tmp_path):
    path = tmp_path / "inst.sh"
    shutil.copyfile(STANDIN, path)
    return path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_fetch(url, timeout=60, ca_path=None):
    raise AssertionError("no download expected")


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,expect", [
    ({"prefix": "miniforge3"}, "absolute path"),
    ({"prefix": "/"}, "root directory"),
    ({"prefix": "/usr"}, "inside /usr, which belongs to the system"),
    ({"prefix": "/usr/lib/miniforge3"}, "inside /usr"),
    ({"prefix": "/usr/local"}, "inside /usr"),
    ({"prefix": "/usr/local/miniforge3"}, "inside /usr"),
    ({"prefix": "/etc/conda"}, "inside /etc"),
    ({"prefix": "/bin/x"}, "inside /bin"),
    ({"prefix": "/var/spool"}, "system directory"),
    ({"prefix": "/opt"}, "system directory"),
    ({"prefix": "/home/alice"}, "system directory"),
    ({"prefix": "/var/lib/conda"}, "inside /var/lib"),
    ({"installer": "https://example.org/Miniforge3.sh"}, "sha256 is not set"),
    ({"installer": "http://example.org/Miniforge3.sh"}, "Plain http"),
    ({"installer": "file:///srv/Miniforge3.sh"}, "sha256 is not set"),
    ({"installer": "ftp://example.org/Miniforge3.sh"}, "not an http"),
    ({"installer": "Miniforge3.sh"}, "absolute path on the host"),
    ({"installer": "https://x/y.sh", "sha256": "abc"}, "not a SHA-256"),
    ({"channels": []}, "fall back to Anaconda"),
    ({"channels": ["conda-forge", "defaults"]}, "terms of service"),
    ({"channels": ["https://repo.anaconda.com/pkgs/main"]}, "terms of service"),
    ({"channel_alias": "mirror.example"}, "channel_alias"),
    ({"custom_channels": {"conda-forge": "mirror"}}, "custom_channels"),
    ({"proxy_servers": {"ftp": "http://p:3128"}}, "proxy_servers"),
    ({"ssl_verify": "maybe"}, "ssl_verify"),
    ({"mode": "0777"}, "world-writable"),
    ({"mode": "rwx"}, "octal"),
    ({"owner": "no-such-user-mlhost"}, "does not exist"),
])
def test_bad_input_is_refused(tmp_path, overrides, expect):
    with pytest.raises(ModuleError, match=expect):
        _miniforge.validate(params(tmp_path, **overrides))


@pytest.mark.parametrize("prefix", ["/opt/miniforge3", "/home/alice/miniforge3", "/srv/conda/base"])
def test_good_prefixes(prefix):
    assert _miniforge.check_prefix(prefix) == prefix


# --- .condarc ----------------------------------------------------------------------------------

def test_condarc_is_conda_forge_only_strict_libmamba():
    text = _miniforge.condarc_text(params(pathlib.Path("/x")), "/etc/ssl/certs/ca-certificates.crt")
    assert text.splitlines()[1:] == [
        "channels:", '  - "conda-forge"', "channel_priority: strict", "solver: libmamba", "auto_update_conda: false",
        "notify_outdated_conda: false", "show_channel_urls: true", 'ssl_verify: "/etc/ssl/certs/ca-certificates.crt"']
    assert "defaults" not in text


def test_condarc_mirror_and_proxy_with_hidden_secrets():
    p = params(pathlib.Path("/x"), channel_alias="https://mirror.example/conda",
               custom_channels={"conda-forge": "https://mirror.example/cf"}, proxy_servers={"https": "http://u:pw@proxy:3128"})
    text = _miniforge.condarc_text(p, "false")
    assert 'channel_alias: "https://mirror.example/conda"' in text
    assert 'custom_channels:\n  "conda-forge": "https://mirror.example/cf"\n' in text
    assert 'proxy_servers:\n  https: "http://u:pw@proxy:3128"\n' in text
    assert text.endswith("ssl_verify: false\n")
    shown = _miniforge.condarc_text(p, "false", hide_secrets=True)
    assert "pw@" not in shown and 'https: "<hidden>"' in shown


def test_ssl_verify_auto_picks_the_host_bundle():
    assert _miniforge.resolve_ssl_verify("auto", lambda p: p == "/etc/pki/tls/certs/ca-bundle.crt") == "/etc/pki/tls/certs/ca-bundle.crt"
    assert _miniforge.resolve_ssl_verify("auto", lambda p: False) is None
    assert _miniforge.resolve_ssl_verify("false") == "false"


# --- install (the stand-in installer, run for real) ---------------------------------------------

def run(p, check_mode=False, fetch=no_fetch):
    runner = BashRunner()
    host = make_host(p, runner, check_mode=check_mode)
    host.fetch = fetch
    return run_worker(_miniforge.MiniforgeWorker, host), runner


def test_install_then_rerun_is_unchanged(tmp_path, installer):
    p = params(tmp_path, sha256=sha(installer), version="24.11.3")
    result, runner = run(p)
    prefix = tmp_path / "opt" / "miniforge3"
    assert result["changed"] and result["installed"] and result["conda_version"] == "24.11.3"
    assert runner.calls[0][0] == "bash" and runner.calls[0][2:] == ["-b", "-p", str(prefix)]
    assert (prefix / ".condarc").read_text().startswith("# Written by mlinfra.mlhost.miniforge")
    assert _ownership.is_owned_dir(str(prefix))
    assert oct((prefix / ".condarc").stat().st_mode & 0o777) == "0o644"
    assert [n for n in os.listdir(prefix.parent) if "mlhost-installer" in n] == []
    again, runner = run(p)
    assert again["changed"] is False and runner.calls == []


def test_check_mode_installs_nothing(tmp_path, installer):
    result, runner = run(params(tmp_path), check_mode=True)
    assert result["changed"] and runner.calls == []
    assert not (tmp_path / "opt").exists()


def test_wrong_sha256_runs_nothing_and_leaves_nothing(tmp_path, installer):
    with pytest.raises(ModuleError, match="was not run"):
        run(params(tmp_path, sha256="0" * 64))
    assert not (tmp_path / "opt").exists()  # a file on the host is checked where it lies: nothing is written


def test_download_goes_to_a_temp_file_beside_and_is_verified(tmp_path, installer):
    seen = []

    def fetch(url, timeout=60, ca_path=None):
        seen.append((url, ca_path))
        return open(installer, "rb")

    p = params(tmp_path, installer="https://mirror.example/Miniforge3.sh", sha256=sha(installer), ssl_verify="auto")
    result = run(p, fetch=fetch)[0]
    assert result["installed"]
    assert seen[0][0] == "https://mirror.example/Miniforge3.sh"
    assert os.listdir(tmp_path / "opt") == ["miniforge3"]


def test_failing_installer_leaves_no_prefix(tmp_path, installer):
    installer.write_text(installer.read_text().replace("MLHOST_STANDIN_FAIL_AFTER_UNPACK=0", "MLHOST_STANDIN_FAIL_AFTER_UNPACK=1"))
    with pytest.raises(ModuleError, match="(?s)installer failed.*was removed.*truncated"):
        run(params(tmp_path))
    assert os.listdir(tmp_path / "opt") == []


def test_other_conda_version_is_removed(tmp_path, installer):
    with pytest.raises(ModuleError, match="not the 25.1.0 asked for"):
        run(params(tmp_path, version="25.1.0"))
    assert os.listdir(tmp_path / "opt") == []


def test_existing_base_with_other_version_fails_without_change(tmp_path, installer):
    run(params(tmp_path))
    with pytest.raises(ModuleError, match="does not upgrade a base in place"):
        run(params(tmp_path, version="25.1.0"))
    assert (tmp_path / "opt" / "miniforge3" / "bin" / "conda").exists()


def test_prefix_that_is_not_conda_is_refused(tmp_path, installer):
    (tmp_path / "opt" / "miniforge3").mkdir(parents=True)
    with pytest.raises(ModuleError, match="not a conda installation"):
        run(params(tmp_path))
    with pytest.raises(ModuleError, match="not removing it"):
        run(params(tmp_path, state="absent"))


def test_condarc_drift_is_repaired_and_absent_removes(tmp_path, installer):
    run(params(tmp_path))
    condarc = tmp_path / "opt" / "miniforge3" / ".condarc"
    condarc.write_text("channels:\n  - defaults\n")
    result = run(params(tmp_path))[0]
    assert result["changed"] and not result["installed"]
    assert result["diff"]["before"] == "channels:\n  - defaults\n"
    assert "defaults" not in condarc.read_text()
    result = run(params(tmp_path, state="absent"))[0]
    assert result["changed"] and not (tmp_path / "opt" / "miniforge3").exists()


# --- ownership (issue 14) ------------------------------------------------------------------------

def test_a_base_an_earlier_version_made_is_recognised_and_marked(tmp_path, installer):
    run(params(tmp_path))
    prefix = tmp_path / "opt" / "miniforge3"
    (prefix / _ownership.MARKER).unlink()  # as the collection's earlier versions left it: only their .condarc
    result = run(params(tmp_path))[0]
    assert result["changed"] and _ownership.is_owned_dir(str(prefix))
    assert run(params(tmp_path))[0]["changed"] is False
    assert run(params(tmp_path, state="absent"))[0]["changed"] and not prefix.exists()


def test_a_base_the_collection_did_not_make_is_never_removed_nor_its_condarc_overwritten(tmp_path, installer):
    run(params(tmp_path))
    prefix = tmp_path / "opt" / "miniforge3"
    (prefix / _ownership.MARKER).unlink()
    (prefix / ".condarc").write_text("channels:\n  - my-mirror\n")
    with pytest.raises(ModuleError, match="did not create.*adopt it by creating"):
        run(params(tmp_path, state="absent"))
    with pytest.raises(ModuleError, match="will not be overwritten"):
        run(params(tmp_path))
    assert (prefix / ".condarc").read_text() == "channels:\n  - my-mirror\n"
    (prefix / _ownership.MARKER).write_text("{}\n")  # adopted, as the message says
    assert run(params(tmp_path, state="absent"))[0]["changed"] and not prefix.exists()


def test_check_mode_is_the_plan_and_the_diff_hides_channel_tokens(tmp_path, installer):
    p = params(tmp_path, channels=["https://mirror.example/t/tok-123/conda-forge"], proxy_servers={"https": "http://u:pw@proxy:3128"})
    result, runner = run(p, check_mode=True)
    assert result["changed"] and runner.calls == [] and not (tmp_path / "opt").exists()
    shown = json.dumps(result["diff"])
    assert "tok-123" not in shown and "pw@" not in shown and "/t/***/conda-forge" in shown


@pytest.mark.parametrize("version,conda", [("24.11.3", "24.11.3"), ("24.11.3-0", "24.11.3"), (None, None)])
def test_version_takes_the_release_name(tmp_path, version, conda):
    assert _miniforge.validate(params(tmp_path, version=version))["version"] == conda


def test_a_failed_download_never_prints_the_installers_token(tmp_path, installer):
    """The installer comes through Host.fetch; its failure (and the entry's output) shows the URL masked."""
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _module
    from mlhost_testlib import HostModule

    class Module(HostModule):
        def exit_json(self, **kwargs):
            self.result = kwargs
            raise SystemExit(0)

        def fail_json(self, **kwargs):
            self.result = kwargs
            raise SystemExit(1)

    url = "https://user:tok-SECRET@mirror.example/Miniforge3.sh?X-Amz-Signature=sig-SECRET"
    module = Module(params(tmp_path, installer=url, sha256=sha(installer)))

    def fetch_url(mod, target, timeout=60, ca_path=None):
        return None, {"status": 403, "msg": f"Forbidden: {target}"}

    with unittest.mock.patch("ansible.module_utils.urls.fetch_url", fetch_url), pytest.raises(SystemExit):
        _module.execute(module, _miniforge.MiniforgeWorker)
    shown = json.dumps(module.result)
    assert module.result["msg"].startswith("Downloading https://***@mirror.example/Miniforge3.sh?***")
    assert "HTTP status 403" in module.result["msg"] and "SECRET" not in shown
    assert not (tmp_path / "opt" / "miniforge3").exists()
    assert [n for n in os.listdir(tmp_path / "opt") if "mlhost-installer" in n] == []
