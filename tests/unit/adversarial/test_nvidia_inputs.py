# SPDX-License-Identifier: GPL-3.0-or-later
"""Adversarial inputs for nvidia_driver and cuda_toolkit (issue 14): each is refused by plan() with a ModuleError
that names the option and ends "Nothing was changed.", before any command runs (the door is a FakeRunner that knows
no command: running one fails the test) and without writing to the host tree.

The host is a Debian 12 tree (os-release, apt sources, no driver). A last group runs the modules' real main()
(argument spec and the one entry) for the inputs that crashed or leaked before: the failure is a clean
``failed`` result, never ansible-core's ``Module failed:`` or a traceback, and no secret is in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _compat, _cuda_toolkit, _nvidia_driver, _run
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, fixture_text, make_host, run_worker

SHA = "0" * 64
SECRET = "s3cr3t-T0KEN"


def driver_params(**overrides):
    base = {"branch": "", "version": "", "flavor": "auto", "source": "auto", "repo_url": "", "repo_key": "", "repo_key_sha256": "",
            "hold": True, "blacklist_nouveau": True, "persistence": True, "exclude_from_automatic_upgrades": True,
            "mok_certificate": "", "mok_key": "", "hold_kernel": False, "kernel_modules": "auto", "kernel_headers": True, "server_packages": True,
            "state": "present", "pkg_mgr": "auto", "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300,
            "proxy_env": {}}
    base.update(overrides)
    return base


def toolkit_params(**overrides):
    base = {"version": "12.4", "source": "auto", "driver_version": "570.86.10", "allow_minor_version_compat": False,
            "set_default": True, "check_space": True, "repo_url": "", "repo_key": "/srv/k.pub", "repo_key_sha256": "",
            "state": "present", "pkg_mgr": "auto", "update_cache": True, "cache_valid_time": 86400, "lock_timeout": 300,
            "proxy_env": {}}
    base.update(overrides)
    return base


# (module, options, the option the message must name, words it must hold, what it is)
DRIVER = [
    ({"branch": "５５０"}, "branch", "not a driver branch", "full-width Unicode digits"),
    ({"branch": "٥٥٠"}, "branch", "not a driver branch", "Arabic-Indic digits"),
    ({"branch": "550\n"}, "branch", "line break", "trailing newline"),
    ({"branch": "550 "}, "branch", "not a driver branch", "trailing space"),
    ({"branch": "55"}, "branch", "not a driver branch", "two digits"),
    ({"branch": "5500"}, "branch", "not a driver branch", "four digits"),
    ({"branch": "r550"}, "branch", "not a driver branch", "R-prefixed branch"),
    ({"branch": "550\0"}, "branch", "NUL byte", "NUL byte"),
    ({"version": "５３５.２６１.０３"}, "version", "not a driver version", "full-width version"),
    ({"version": "535.261.03\n"}, "version", "line break", "version with a newline"),
    ({"version": "535"}, "version", "not a driver version", "a branch given as version"),
    ({"version": "latest"}, "version", "not a driver version", "latest"),
    ({"version": "535.261.03.1"}, "version", "not a driver version", "four parts"),
    ({"version": "535..03"}, "version", "not a driver version", "empty part"),
    ({"version": "535.261.03; rm -rf /"}, "version", "not a driver version", "shell text"),
    ({"version": "535.261.03\t"}, "version", "control character", "trailing tab"),
    ({"branch": "535", "version": "550.54.14"}, "version", "is not on branch 535", "branch and version disagree"),
    ({"flavor": "open", "branch": "470"}, "flavor", "start with branch 515", "open modules on R470"),
    ({"flavor": "open", "branch": "510"}, "flavor", "start with branch 515", "open modules on R510"),
    ({"flavor": "open", "version": "470.256.02"}, "flavor", "start with branch 515", "open modules on a 470 version"),
    ({"repo_url": "http://[::1"}, "repo_url", "cannot be parsed", "malformed IPv6 host"),
    ({"repo_url": "http://[::1]:99999/cuda/"}, "repo_url", "cannot be parsed", "port out of range"),
    ({"repo_url": "https://mirror:port/cuda/"}, "repo_url", "cannot be parsed", "port that is no number"),
    ({"repo_url": "ftp://mirror.example/cuda/"}, "repo_url", "has scheme ftp://", "ftp URL"),
    ({"repo_url": "mirror.example/cuda"}, "repo_url", "has scheme none", "no scheme"),
    ({"repo_url": "https://"}, "repo_url", "has no host", "no host"),
    ({"repo_url": "file://relative/path"}, "repo_url", "has no absolute path", "file URL without a path"),
    ({"repo_url": "https://mirror.example/cu da/"}, "repo_url", "white space", "space in the URL"),
    ({"repo_url": "https://mirror.example/\0"}, "repo_url", "NUL byte", "NUL byte in the URL"),
    ({"repo_url": "javascript:alert(1)"}, "repo_url", "has scheme javascript://", "javascript: URL"),
    ({"repo_url": "https://m.example/" + "a" * 5000}, "repo_url", "characters long", "overlong URL"),
    ({"repo_key": "keys/nvidia.pub", "source": "nvidia_repo"}, "repo_key", "neither an absolute path", "relative key path"),
    ({"repo_key": "/srv/k.pub\0", "source": "nvidia_repo"}, "repo_key", "NUL byte", "NUL byte in the key path"),
    ({"repo_key": "https://x.example/k.pub"}, "repo_key", "without repo_key_fingerprints or repo_key_sha256", "https key without sha256"),
    ({"repo_key": "http://x.example/k.pub"}, "repo_key", "plain-http URL without repo_key_fingerprints", "http key without sha256"),
    ({"repo_key_fingerprints": ["3BF863CC"]}, "repo_key_fingerprints", "short key id", "short key id as fingerprint"),
    ({"repo_key_fingerprints": ["EB69 3B30 35CD 5710 E231 E123 A4B4 6996 3BF8 63"]}, "repo_key_fingerprints",
     "not a full key fingerprint", "fingerprint two digits short"),
    ({"repo_key_fingerprints": ["EB693B3035CD5710E231E123A4B469963BF863C\u0421"]}, "repo_key_fingerprints",
     "not a full key fingerprint", "fingerprint with a Cyrillic letter"),
    ({"repo_key": "ftp://x.example/k.pub", "repo_key_sha256": SHA}, "repo_key", "has scheme ftp://", "ftp key"),
    ({"repo_key": "https://[::1/k.pub", "repo_key_sha256": SHA}, "repo_key", "cannot be parsed", "malformed IPv6 key URL"),
    ({"repo_key": "file://k.pub"}, "repo_key", "without an absolute path", "file URL key without a path"),
    ({"repo_key": "https:///k.pub", "repo_key_sha256": SHA}, "repo_key", "has no host", "key URL without a host"),
    ({"repo_key": "/k.pub", "repo_key_sha256": "abc"}, "repo_key_sha256", "64 hexadecimal", "short sha256"),
    ({"repo_key": "/k.pub", "repo_key_sha256": "g" * 64}, "repo_key_sha256", "64 hexadecimal", "non-hex sha256"),
    ({"repo_key": "/k.pub", "repo_key_sha256": "0" * 63}, "repo_key_sha256", "64 hexadecimal", "63 digits"),
    ({"repo_key": "/k.pub", "repo_key_sha256": SHA + "\n"}, "repo_key_sha256", "line break", "sha256 with a newline"),
    ({"repo_key": "/k.pub", "repo_key_sha256": "０" * 64}, "repo_key_sha256", "64 hexadecimal", "full-width sha256"),
    ({"repo_key_sha256": SHA}, "repo_key_sha256", "repo_key is empty", "a checksum without a key"),
    ({"source": "nvidia_repo", "repo_url": "file:///srv/mirror/"}, "repo_key", "The mirror lacks NVIDIA's key file",
     "a mirror without a key"),
    ({"branch": "580", "repo_url": "file:///srv/mirror/"}, "repo_key", "/srv/mirror/3bf863cc.pub does not exist",
     "auto picked a mirror without a key"),
    ({"branch": "580", "source": "distro"}, "branch", "carries only the 535 driver branch", "branch 580 from Debian 12"),
    ({"lock_timeout": -1}, "lock_timeout", "0 or more seconds", "negative lock timeout"),
    ({"cache_valid_time": -5}, "cache_valid_time", "0 or more seconds", "negative cache time"),
]
TOOLKIT = [
    ({"version": "12.7"}, "version", "CUDA 12.7 does not exist", "CUDA 12.7, never released"),
    ({"version": "99.0", "source": "distro"}, "version", "carries CUDA 11.8, not 99.0", "a future CUDA from the distribution"),
    ({"version": "12.10"}, "version", "CUDA 12.10 does not exist", "a minor inside the data's range, never released"),
    ({"version": "１２.４"}, "version", "is not a CUDA version", "full-width digits"),
    ({"version": "12.4\n"}, "version", "line break", "trailing newline"),
    ({"version": "12"}, "version", "is not a CUDA version", "major only"),
    ({"version": "12.4.1.1"}, "version", "is not a CUDA version", "four parts"),
    ({"version": "twelve"}, "version", "is not a CUDA version", "a word"),
    ({"version": "12.4 "}, "version", "is not a CUDA version", "trailing space"),
    ({"version": ""}, "version", "version is required", "no version"),
    ({"version": "auto", "state": "absent"}, "version", "auto cannot be removed", "removing auto"),
    ({"driver_version": "five-fifty"}, "driver_version", "not a driver version", "a word as driver"),
    ({"driver_version": "５５０"}, "driver_version", "not a driver version", "full-width driver"),
    ({"driver_version": "550\n"}, "driver_version", "line break", "driver with a newline"),
    ({"driver_version": "55"}, "driver_version", "not a driver version", "two-digit driver"),
    ({"driver_version": "550.54.14.1"}, "driver_version", "not a driver version", "four-part driver"),
    ({"driver_version": "535.309.01"}, "driver_version", "needs NVIDIA driver >= 550.54.14", "planned driver too old"),
    ({"repo_url": "http://[::1"}, "repo_url", "cannot be parsed", "malformed IPv6 mirror"),
    ({"repo_url": "ftp://m.example/cuda/"}, "repo_url", "has scheme ftp://", "ftp mirror"),
    ({"repo_key": "/k\0"}, "repo_key", "NUL byte", "NUL byte in the key"),
    ({"repo_key_sha256": "xyz"}, "repo_key_sha256", "64 hexadecimal", "malformed sha256"),
    ({"repo_key": "", "source": "nvidia_repo", "repo_url": "file:///srv/mirror/"}, "repo_key", "The mirror lacks NVIDIA's key file",
     "a mirror without a key"),
    ({"repo_key": "", "repo_url": "file:///srv/m/"}, "repo_key", "/srv/m/3bf863cc.pub does not exist", "auto picked a mirror, no key"),
    ({"source": "distro"}, "version", "carries CUDA 11.8, not 12.4", "Debian 12's toolkit is 11.8"),
    ({"lock_timeout": -1}, "lock_timeout", "0 or more seconds", "negative lock timeout"),
]
CASES = [("nvidia_driver", driver_params(**o), option, words, about) for o, option, words, about in DRIVER] + [
    ("cuda_toolkit", toolkit_params(**o), option, words, about) for o, option, words, about in TOOLKIT]
WORKERS = {"nvidia_driver": _nvidia_driver.Driver, "cuda_toolkit": _cuda_toolkit.Toolkit}


def snapshot(top: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "d"
            for p in sorted(top.rglob("*"))}


@pytest.fixture
def debian12(tree):
    return Sysroot(str(tree({"etc/os-release": fixture_text("os-release/debian12"), "proc/modules": "", "usr/bin/apt-get": "",
                             "proc/sys/kernel/arch": "x86_64\n",
                             "etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\n"})))


def test_there_are_enough_cases():
    assert len(CASES) >= 50
    assert len({(c[0], c[4]) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("module, params, option, words, about", CASES, ids=[f"{c[0]}-{c[4]}" for c in CASES])
@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "run"])
def test_refused_before_any_command_naming_the_option(module, params, option, words, about, check_mode, debian12):
    runner = FakeRunner({})
    before = snapshot(pathlib.Path(debian12.root))
    with pytest.raises(ModuleError) as info:
        run_worker(WORKERS[module], make_host(params, runner, check_mode=check_mode, sysroot=debian12))
    msg = info.value.msg
    assert option in msg and words in msg, msg
    assert msg.endswith("Nothing was changed."), msg
    assert runner.calls == []
    assert snapshot(pathlib.Path(debian12.root)) == before


def test_a_keyless_repository_says_why_auto_chose_it(debian12, monkeypatch):
    monkeypatch.setattr(_compat, "NVIDIA_REPO_KEYS", {})  # a tree whose published key the data does not list
    with pytest.raises(ModuleError) as info:
        run_worker(_nvidia_driver.Driver, make_host(driver_params(branch="580"), FakeRunner({}), sysroot=debian12))
    assert "(source: auto chose NVIDIA's CUDA repository because Debian GNU/Linux 12 (bookworm) carries only driver branch 535 " \
           "and branch 580 was asked)" in info.value.msg
    assert "Set repo_key to the repository's signing key" in info.value.msg and "or set source: distro" in info.value.msg


@pytest.mark.parametrize(
    "module, params",
    [("nvidia_driver", {"repo_url": f"https://user:{SECRET}@[::1/cuda/"}),
     ("nvidia_driver", {"repo_key": f"https://user:{SECRET}@keys.example/k.pub"}),
     ("nvidia_driver", {"repo_url": f"ftp://user:{SECRET}@mirror.example/cuda/"}),
     ("cuda_toolkit", {"version": "12.4", "repo_url": f"http://u:{SECRET}@[::1"}),
     ("cuda_toolkit", {"version": "12.4", "repo_key": f"http://u:{SECRET}@keys.example/k.pub"})],
)
def test_refusals_never_print_the_credential_of_a_url(module, params, debian12):
    full = driver_params(**params) if module == "nvidia_driver" else toolkit_params(**params)
    with pytest.raises(ModuleError) as info:
        run_worker(WORKERS[module], make_host(full, FakeRunner({}), sysroot=debian12))
    assert SECRET not in info.value.msg and "***@" in info.value.msg


# Through the real main(): argument spec, the one entry, the door closed ---------------------------------


@pytest.fixture
def closed_door(monkeypatch):
    def closed(*args, **kwargs):
        raise AssertionError(f"a command ran for bad input: {args}")

    monkeypatch.setattr(_run.Runner, "run", closed)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", closed)


MAIN_CASES = [
    ("nvidia_driver", {"repo_url": "http://[::1"}, "repo_url"),
    ("nvidia_driver", {"repo_key": "/k.pub\0", "source": "nvidia_repo"}, "repo_key"),
    ("nvidia_driver", {"branch": "５５０"}, "branch"),
    ("nvidia_driver", {"flavor": "open", "branch": "470"}, "flavor"),
    ("nvidia_driver", {"repo_url": f"https://u:{SECRET}@[::1/x"}, "repo_url"),
    ("cuda_toolkit", {"version": "12.7", "driver_version": "570.86.10"}, "version"),
    ("cuda_toolkit", {"version": "12.4", "repo_url": "http://[::1"}, "repo_url"),
    ("cuda_toolkit", {"version": "12.4", "repo_key": "/k\0"}, "repo_key"),
]


@pytest.mark.parametrize("module, args, option", MAIN_CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(MAIN_CASES)])
def test_main_fails_cleanly(module, args, option, closed_door, capsys):
    import importlib

    main = importlib.import_module(f"ansible_collections.mlinfra.mlhost.plugins.modules.{module}").main
    with patch_module_args(dict(args, _ansible_check_mode=True)):
        with pytest.raises(SystemExit) as exit_info:
            main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exit_info.value.code == 1 and result["failed"] is True, result
    assert option in result["msg"] and result["msg"].endswith("Nothing was changed."), result["msg"]
    assert "Internal error" not in result["msg"] and "Traceback" not in out and "Module failed" not in out
    assert SECRET not in out
    assert result["commands"] == []
    assert os.environ.get("MLHOST_NEVER_SET") is None
