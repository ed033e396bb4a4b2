# SPDX-License-Identifier: GPL-3.0-or-later
"""python_env's decisions on an existing environment, through the exact commands it runs."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _ownership, _python_env, _venv
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from mlhost_testlib import FakeRunner, make_host

INTERPRETER_PROBE = _python_env.INTERPRETER_PROBE


def params(tmp_path, **overrides):
    base = {"path": str(tmp_path / "envs" / "e"), "python": "/usr/bin/python3", "packages": ["six==1.16.0", "idna<4"],
            "requirements": None, "constraints": None, "backend": "pip", "index_url": None, "extra_index_urls": [],
            "find_links": [], "offline": False, "torch_cuda": "auto", "torch_index_url": "https://download.pytorch.org/whl",
            "lock_file": None, "ca_bundle": None, "owner": None, "group": None, "mode": None,
            "tool_dir": str(tmp_path / "tools"), "state": "present"}
    base.update(overrides)
    return base


@pytest.fixture
def env_on_disk(tmp_path, monkeypatch):
    """An environment made by an earlier run: a generation with bin/python and its state file, and the symlink."""
    gen = tmp_path / "envs" / ".e.mlhost-envs" / "g1"
    (gen / "bin").mkdir(parents=True)
    (gen / "bin" / "python").write_text("#!/bin/false\n")
    (gen / "bin" / "python").chmod(0o755)
    (gen / _venv.STATE_FILE).write_text(json.dumps({"requested_names": ["idna", "six"]}))
    os.symlink(gen, tmp_path / "envs" / "e")
    monkeypatch.setattr(os, "access", lambda p, mode: True)
    return gen


def record(tmp_path, p, packages, gen=None, salt="5a" * 16):
    """The state file a build with params ``p`` writes: its request's fingerprint and the packages it installed."""
    gen = gen or tmp_path / "envs" / ".e.mlhost-envs" / "g1"
    checked = _python_env.check_options(p)
    state = {"requested_names": sorted({rq.canonical(r.name) for r in checked["reqs"]}), "request_salt": salt,
             "request_sha256": rq.fingerprint(_python_env.request_identity(p, checked, None, "3.11.2"), salt),
             "request": _python_env.shown_request(p, checked), "installed": {rq.canonical(n): v for n, v in packages.items()}}
    (gen / _venv.STATE_FILE).write_text(json.dumps(state))
    return state


def probe_output(packages):
    return json.dumps({"python": "3.11.2", "prefix": "/x", "packages": packages,
                       "markers": {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux",
                                   "os_name": "posix", "platform_machine": "x86_64", "implementation_name": "cpython",
                                   "python_full_version": "3.11.2", "platform_python_implementation": "CPython",
                                   "platform_release": "6.1", "platform_version": "#1", "implementation_version": "3.11.2"}})


def new_env_check(gpy, packages, names=("six",), imports=None, mode="auto", old="null"):
    """The new generation's one start (probe, then import check): its argv key and its answer."""
    imports = imports or {"checked": list(names), "failed": {}, "missing": []}
    out = "mlhost-probe " + probe_output(packages) + "\n\n" + json.dumps(imports) + "\n"
    return (gpy, "-I", "-c", _venv.NEW_ENV_CHECK, mode, old, *names), (0, out, "")


def runner_for(tmp_path, packages):
    env_python = str(tmp_path / "envs" / "e" / "bin" / "python")
    return FakeRunner({
        ("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", ""),
        (env_python, "-I", "-c", _venv.PROBE): (0, probe_output(packages), ""),
    })


def run(p, runner, check_mode, host_cuda):
    """plan, then apply unless check mode: the entry's order. Returns (plan, result)."""
    worker = _python_env.PythonEnv(make_host(p, runner, check_mode), host_cuda, lambda: [])  # no GPU read from this machine
    plan = worker.plan()
    result = dict(plan.result)
    if plan.changed and not check_mode:
        result.update(worker.apply(plan) or {})
    result["changed"] = plan.changed
    return plan, result


def test_met_request_is_two_reads_and_no_change(tmp_path, env_on_disk):
    record(tmp_path, params(tmp_path), {"six": "1.16.0", "idna": "3.10", "pip": "24.0"})
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10", "pip": "24.0"})
    result = run(params(tmp_path), runner, False, lambda: None)[1]
    assert result["changed"] is False
    assert result["installed"] == {"idna": "3.10", "six": "1.16.0"}  # pip, a seed, is left out
    assert len(runner.calls) == 2


def test_check_mode_reports_the_plan_and_runs_no_installer(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10"})
    p = params(tmp_path, packages=["six==1.17.0", "attrs"])
    result = run(p, runner, True, lambda: None)[1]
    assert result["changed"] is True
    assert result["added"] == {"attrs": "(new)"}
    assert result["removed"] == {"idna": "3.10"}
    assert result["upgraded"] == {"six": {"from": "1.16.0", "to": "==1.17.0"}}
    assert len(runner.calls) == 2 and not os.path.exists(tmp_path / "envs" / ".e.mlhost-envs" / "g2")


def test_dropping_a_package_is_a_change_even_when_the_rest_is_met(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10"})
    result = run(params(tmp_path, packages=["six==1.16.0"]), runner, True, lambda: None)[1]
    assert result["changed"] is True and result["removed"] == {"idna": "3.10"}


def test_torch_auto_needs_a_pin(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {})
    with pytest.raises(ModuleError) as err:
        run(params(tmp_path, packages=["torch>=2"]), runner, True, lambda: "12.4")
    assert "needs torch pinned" in err.value.msg


def test_torch_auto_follows_the_driver(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {})
    index = (pathlib.Path(__file__).parents[3] / "fixtures" / "torch_index" / "whl").as_uri()  # a stand-in of PyTorch's
    result = run(params(tmp_path, packages=["torch==2.5.1"], torch_index_url=index), runner, True, lambda: "12.2")[1]
    assert result["torch_index"] == "cu121"
    result = run(params(tmp_path, packages=["torch==2.5.1"]), runner, True, lambda: None)[1]
    assert result["torch_index"] == "cpu"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"path": "/usr/lib/env"}, "is inside /usr, which belongs to the system"),
        ({"offline": True}, "needs find_links"),
        ({"torch_cuda": "cuda12"}, "torch_cuda 'cuda12' is not valid"),
        ({"torch_cuda": "cu127"}, "cu118, cu121, cu124"),
        ({"index_url": "pypi.example.internal/simple"}, "not an http(s):// or file:// URL"),
        ({"requirements": "/nonexistent/req.txt"}, "does not exist on the host"),
        ({"lock_file": "env.lock"}, "must be an absolute path"),
        ({"owner": "mlhost-no-such-user"}, "does not exist on the host"),
        ({"packages": [], "requirements": None}, "Nothing to install"),
        ({"find_links": ["relative/wheels"]}, "must be an absolute directory"),
    ],
)
def test_bad_input(tmp_path, overrides, message):
    with pytest.raises(ModuleError) as err:
        _python_env.check_options(params(tmp_path, **overrides))
    assert message in err.value.msg


def test_index_url_error_does_not_echo_the_url(tmp_path):
    with pytest.raises(ModuleError) as err:
        _python_env.check_options(params(tmp_path, index_url="user:s3cret@pypi.example.internal"))
    assert "s3cret" not in err.value.msg


# --- apply: what the plan says, and the marks of ownership -----------------------------------------------


class Building(FakeRunner):
    """The door for a build: the venv command makes the generation's bin/python, like `python -m venv`."""

    def run(self, argv, **kwargs):
        if argv[1:3] == ["-m", "venv"]:
            (pathlib.Path(argv[3]) / "bin").mkdir(parents=True)
            (pathlib.Path(argv[3]) / "bin" / "python").write_text("#!/bin/false\n")
            (pathlib.Path(argv[3]) / "bin" / "python").chmod(0o755)
        return super().run(argv, **kwargs)


def test_create_builds_a_marked_generation_swaps_and_writes_a_marked_lock(tmp_path, monkeypatch):
    gen = tmp_path / "envs" / ".e.mlhost-envs" / "g1"
    monkeypatch.setattr(_venv, "new_generation", lambda path: str(gen))
    (tmp_path / "envs").mkdir()
    lock = tmp_path / "e.lock"
    p = params(tmp_path, packages=["six==1.17.0"], lock_file=str(lock), owner="root", mode="0750")
    gpy = str(gen / "bin" / "python")
    runner = Building({
        ("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", ""),
        ("/usr/bin/python3", "-m", "venv", str(gen)): (0, "", ""),
        (gpy, "-m", "pip", "install", "--no-warn-script-location", "-r", str(gen / "mlhost-requirements.txt")): (0, "", ""),
        (gpy, "-m", "pip", "check"): (0, "No broken requirements found.\n", ""),
        new_env_check(gpy, {"six": "1.17.0", "pip": "24.0"})[0]: new_env_check(gpy, {"six": "1.17.0", "pip": "24.0"})[1],
    })
    host = make_host(p, runner)
    worker = _python_env.PythonEnv(host, lambda: None)
    plan = worker.plan()
    assert plan.changed and plan.result["action"] == "create" and plan.result["added"] == {"six": "(new)"}
    assert [s[0] for s in plan.steps] == ["build", "lock"]
    assert len(runner.calls) == 1  # the plan only read the interpreter
    out = worker.apply(plan)
    assert out["added"] == {"six": "1.17.0"} and out["generation"] == str(gen)
    assert os.readlink(tmp_path / "envs" / "e") == str(gen)
    assert json.loads((gen / _ownership.MARKER).read_text())["created_by"] == "mlinfra.mlhost.python_env"
    assert lock.read_text().startswith(_ownership.TEXT_MARKER) and lock.read_text().endswith("six==1.17.0\n")
    assert ("mode", str(gen), "0750") in host.module.attributes
    assert ("owner", str(tmp_path / "envs" / "e"), "root") in host.module.attributes
    assert ("owner", str(gen / "bin" / "python"), "root") in host.module.attributes


def test_met_request_with_a_stale_lock_plans_only_the_lock(tmp_path, env_on_disk):
    lock = tmp_path / "e.lock"
    lock.write_text(_ownership.TEXT_MARKER + " python_env: exact pins of somewhere.\nsix==1.0\n")
    record(tmp_path, params(tmp_path, lock_file=str(lock)), {"six": "1.16.0", "idna": "3.10"})
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10"})
    worker = _python_env.PythonEnv(make_host(params(tmp_path, lock_file=str(lock)), runner, diff_mode=True), lambda: None)
    plan = worker.plan()
    assert plan.changed and plan.steps[0][0] == "lock" and plan.result["action"] == "none"
    assert "six==1.0" in plan.diff["before"] and "six==1.16.0" in plan.diff["after"]
    worker.apply(plan)
    assert lock.read_text().splitlines()[-2:] == ["idna==3.10", "six==1.16.0"]
    assert len(runner.calls) == 2


def test_update_diff_comes_from_the_plan(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10"})
    plan = _python_env.PythonEnv(make_host(params(tmp_path, packages=["six==1.17.0", "idna<4"]), runner, True),
                                 lambda: None).plan()
    assert plan.result["action"] == "update"
    assert plan.diff["before"] == "# request (not recorded)\n# packages\nidna==3.10\nsix==1.16.0\n"
    assert plan.diff["after"].startswith("# request ")
    assert plan.diff["after"].endswith("\nsix==1.17.0\nidna<4\n# packages\nidna==3.10\nsix==1.17.0\n")


def test_a_different_python_minor_is_a_rebuild(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10"})
    runner.responses[("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE)] = (0, "3.13.1\n", "")
    plan = _python_env.PythonEnv(make_host(params(tmp_path), runner, True), lambda: None).plan()
    assert plan.changed and plan.result["action"] == "rebuild"
    assert plan.result["reasons"][-1] == "the environment has Python 3.11.2, the interpreter is 3.13.1"


def test_check_mode_decides_on_a_fresh_host_with_pip_s_vendored_packaging(tmp_path, monkeypatch):
    """No packaging on the host, no tool venv: the plan still parses (pip's copy) and refuses shell text."""
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq

    real_import = rq.importlib.import_module

    def no_plain_packaging(name, *args):
        if name.startswith("packaging"):
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(rq, "_MODULES", {})
    monkeypatch.setattr(rq.importlib, "import_module", no_plain_packaging)
    assert rq.load_packaging([]) == "pip._vendor.packaging"
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", "")})
    (tmp_path / "envs").mkdir()
    plan = _python_env.PythonEnv(make_host(params(tmp_path), runner, True), lambda: None).plan()
    assert plan.changed and plan.result["action"] == "create" and plan.result["added"] == {"idna": "(new)", "six": "(new)"}
    with pytest.raises(ModuleError, match="not a valid requirement"):
        _python_env.PythonEnv(make_host(params(tmp_path, packages=["numpy; rm -rf /"]), FakeRunner({}), True), lambda: None).plan()


def test_no_packaging_anywhere_is_refused_naming_python3_venv(monkeypatch):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements as rq

    def nothing(name, *args):
        raise ImportError(name)

    monkeypatch.setattr(rq, "_MODULES", {})
    monkeypatch.setattr(rq.importlib, "import_module", nothing)
    monkeypatch.setattr(rq, "_pip_wheels", lambda: [])
    with pytest.raises(ModuleError, match="python3-venv"):
        rq.load_packaging([])


def test_the_entry_returns_the_plan_in_check_mode_masked(tmp_path, env_on_disk):
    """Through execute(): changed and diff from the plan, a token in a requirement line never printed."""
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _module

    class Module:
        check_mode, _diff, _name = True, True, "python_env"

        def __init__(self, p):
            self.params, self.out = p, None

        def warn(self, text):
            pass

        def exit_json(self, **kw):
            self.out = kw

        def fail_json(self, **kw):
            self.out = dict(kw, failed=True)

    module = Module(params(tmp_path, packages=["six @ https://u:TOKEN9@h.example/six.whl ; rm -rf /"]))
    _module.execute(module, lambda host: _python_env.PythonEnv(host, lambda: None))
    assert module.out["failed"] and "TOKEN9" not in json.dumps(module.out) and "https://***@h.example" in module.out["msg"]
    assert module.out["commands"] == []


# --- the packaging wheel a plan fetches on a fresh host (no packaging, no pip, no python3-venv) ------------------


class _Response:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def _fetching_env(tmp_path, pages, **params):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._python_env import PythonEnv
    from mlhost_testlib import make_host

    base = {"find_links": [], "offline": False, "index_url": None, "ca_bundle": None, "tool_dir": "/opt/mlhost/tools"}
    base.update(params)
    host = make_host(base)
    fetched = []

    def fetch(url, timeout=60, ca_path=None):
        fetched.append(url)
        if url not in pages:
            raise ModuleError(f"Downloading {url} failed: HTTP status 404")
        return _Response(pages[url])

    host.fetch = fetch
    host.module.tmpdir = str(tmp_path)
    return PythonEnv(host), fetched


def test_plan_fetches_the_packaging_wheel_from_the_index_and_checks_its_sha256(tmp_path):
    import hashlib

    wheel = b"PK fake wheel bytes"
    digest = hashlib.sha256(wheel).hexdigest()
    name = "packaging-26.3-py3-none-any.whl"
    page = f'<a href="../../files/{name}#sha256={digest}">{name}</a>'.encode()
    pages = {"https://mirror.example/simple/packaging/": page, f"https://mirror.example/files/{name}#sha256={digest}": wheel}
    env, fetched = _fetching_env(tmp_path, pages, index_url="https://mirror.example/simple/")
    path, tried = env.fetch_wheel(name, digest)
    assert path == str(tmp_path / name) and (tmp_path / name).read_bytes() == wheel and tried == ""
    assert fetched == ["https://mirror.example/simple/packaging/", f"https://mirror.example/files/{name}#sha256={digest}"]
    # the same bytes under another digest are refused
    path, tried = env.fetch_wheel(name, "0" * 64)
    assert path is None and "does not have the expected sha256" in tried


def test_plan_takes_the_packaging_wheel_from_find_links_and_never_the_network_offline(tmp_path):
    import hashlib

    name = "packaging-26.3-py3-none-any.whl"
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / name).write_bytes(b"wheel")
    digest = hashlib.sha256(b"wheel").hexdigest()
    env, fetched = _fetching_env(tmp_path, {}, find_links=[f"file://{tmp_path}/wheels"], offline=True)
    assert env.fetch_wheel(name, digest) == (str(tmp_path / "wheels" / name), "")
    path, tried = env.fetch_wheel(name, "1" * 64)
    assert path is None and "has another sha256" in tried and "offline" in tried and fetched == []


def test_plan_without_any_packaging_source_names_what_it_tried(tmp_path, monkeypatch):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _requirements
    from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

    monkeypatch.setattr(_requirements, "_MODULES", {})
    monkeypatch.setattr(_requirements, "_load", lambda prefixes: None)
    monkeypatch.setattr(_requirements, "_pip_wheels", lambda: [])
    env, fetched = _fetching_env(tmp_path, {}, index_url="https://u:s3cr3t@mirror.example/simple")
    with pytest.raises(ModuleError) as err:
        _requirements.load_packaging((), env.fetch_wheel)
    assert "python3-venv" in err.value.msg and "https://***@mirror.example/simple/packaging/" in err.value.msg
    assert "s3cr3t" not in err.value.msg and fetched == ["https://u:s3cr3t@mirror.example/simple/packaging/"]


def test_the_system_ca_bundle_is_the_first_store_there(tmp_path):
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv

    assert _venv.system_ca_bundle(str(tmp_path)) is None
    (tmp_path / "etc" / "pki" / "tls" / "certs").mkdir(parents=True)
    (tmp_path / "etc" / "pki" / "tls" / "certs" / "ca-bundle.crt").write_text("PEM")
    assert _venv.system_ca_bundle(str(tmp_path)) == "/etc/pki/tls/certs/ca-bundle.crt"  # RHEL's
    (tmp_path / "etc" / "ssl" / "certs").mkdir(parents=True)
    (tmp_path / "etc" / "ssl" / "certs" / "ca-certificates.crt").write_text("PEM")
    assert _venv.system_ca_bundle(str(tmp_path)) == "/etc/ssl/certs/ca-certificates.crt"  # Debian's comes first


def test_unset_ca_bundle_hands_the_system_store_to_the_installers_and_the_wheel_fetch(tmp_path, monkeypatch):
    # uv trusts only its built-in roots and pip in a venv certifi's: a TLS-intercepting proxy that the host's store
    # trusts failed with "invalid peer certificate: UnknownIssuer" until the module handed them the system bundle.
    from ansible_collections.mlinfra.mlhost.plugins.module_utils import _venv

    monkeypatch.setattr(_venv, "system_ca_bundle", lambda root="/": "/etc/ssl/certs/ca-certificates.crt")
    seen = []
    env, _fetched = _fetching_env(tmp_path, {})
    assert env.ca == "/etc/ssl/certs/ca-certificates.crt"
    env.host.fetch = lambda url, timeout=60, ca_path=None: seen.append(ca_path) or _Response(b"")
    env.fetch_wheel("packaging-26.3-py3-none-any.whl", "0" * 64)
    assert seen and set(seen) == {"/etc/ssl/certs/ca-certificates.crt"}
    assert _venv.installer_env("uv", None, [], env.ca)["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    pip = _venv.installer_env("pip", None, [], env.ca)
    assert pip["PIP_CERT"] == pip["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    bundle = tmp_path / "proxy.pem"
    bundle.write_text("PEM")
    env2, _fetched2 = _fetching_env(tmp_path, {}, ca_bundle=str(bundle))
    assert env2.ca == str(bundle)  # a bundle named is used instead


# --- the import check: each requested distribution's own module, from its metadata -----------------------------


def _site(tmp_path):
    """A site-packages shaped like real wheels: black (with blackd, which needs aiohttp, an extra), scikit-learn
    (module sklearn), PyYAML (yaml and the private _yaml), attrs without top_level.txt (RECORD only), and a
    distribution whose module fails to import."""
    site = tmp_path / "site"

    def dist(name, version, top_level=None, record=(), modules=None):
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        if top_level is not None:
            (info / "top_level.txt").write_text("".join(f"{t}\n" for t in top_level))
        (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))
        for path, text in (modules or {}).items():
            (site / path).parent.mkdir(parents=True, exist_ok=True)
            (site / path).write_text(text)

    dist("black", "22.6.0", ["_black_version", "black", "blackd", "blib2to3"],
         modules={"black/__init__.py": "", "blackd/__init__.py": "import aiohttp_not_here\n", "blib2to3/__init__.py": "",
                  "_black_version.py": ""})
    dist("scikit-learn", "1.5.2", ["sklearn"], modules={"sklearn/__init__.py": ""})
    dist("PyYAML", "6.0.2", ["_yaml", "yaml"], modules={"yaml/__init__.py": "", "_yaml/__init__.py": ""})
    dist("attrs", "24.2.0", None, record=["attr/__init__.py", "attrs/__init__.py", "attrs-24.2.0.dist-info/RECORD"],
         modules={"attr/__init__.py": "", "attrs/__init__.py": ""})
    dist("brokenpkg", "1.0", ["brokenpkg"], modules={"brokenpkg/__init__.py": "raise ImportError('needs libfoo.so.1')\n"})
    return site


def _import_check(site, *args):
    import subprocess
    import sys

    code = f"import sys; sys.path.insert(0, {str(site)!r}); exec(compile({_venv.IMPORT_CHECK!r}, 'check', 'exec'))"
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_auto_imports_each_distributions_own_module_only(tmp_path):
    site = _site(tmp_path)
    got = _import_check(site, "auto", "black", "scikit_learn", "pyyaml", "attrs", "not-installed")
    assert got["checked"] == ["black", "sklearn", "yaml", "attrs"]  # not blackd: it needs aiohttp (black[d])
    assert got["failed"] == {} and got["missing"] == ["not-installed"]
    broken = _import_check(site, "auto", "brokenpkg")
    assert broken["failed"] == {"brokenpkg": "ImportError: needs libfoo.so.1"}


def test_import_check_names_modules_to_import_instead(tmp_path):
    site = _site(tmp_path)
    got = _import_check(site, "modules", "blackd", "yaml")
    assert got["checked"] == ["blackd", "yaml"] and list(got["failed"]) == ["blackd"]


@pytest.mark.parametrize("value, expected", [
    (None, ["auto"]), (["auto"], ["auto"]), (["off"], ["off"]), ([], ["off"]), (["False"], ["off"]), (["no"], ["off"]),
    (["True"], ["auto"]), (["torch", "torchvision"], ["torch", "torchvision"]),
])
def test_import_check_option_normalized(value, expected):
    params = {} if value is None else {"import_check": value}
    assert _python_env.import_check_of(params) == expected


@pytest.mark.parametrize("value, message", [
    (["auto", "torch"], "not a mix"),
    (["torch; rm -rf /"], "is not a module name"),
    (["1torch"], "is not a module name"),
    (["torch\n"], "is not a module name"),
])
def test_import_check_bad_values_are_refused_before_anything(tmp_path, value, message):
    with pytest.raises(ModuleError, match=message):
        _python_env.check_options(params(tmp_path, import_check=value))


def test_import_and_dependency_check_commands():
    check = ["/e/bin/python", "-I", "-c", _venv.NEW_ENV_CHECK]
    assert _venv.new_env_check_argv("/e/bin/python", ["off"], ["six"], None) == check + ["off", "null"]
    assert _venv.new_env_check_argv("/e/bin/python", ["auto"], ["six"], None) == check + ["auto", "null", "six"]
    assert _venv.new_env_check_argv("/e/bin/python", ["torch"], ["six"], None) == check + ["modules", "null", "torch"]
    old = {"python": "3.11.2", "packages": {"six": "1.16.0"}, "prefix": "/e", "markers": {}}
    assert json.loads(_venv.new_env_check_argv("/e/bin/python", ["auto"], ["six"], old)[5]) == {
        "python": "3.11.2", "packages": {"six": "1.16.0"}}
    assert _venv.dependency_check_argv("uv", "/e/bin/python", "/t/bin/uv") == ["/t/bin/uv", "pip", "check", "--python", "/e/bin/python"]
    assert _venv.dependency_check_argv("pip", "/e/bin/python", None) == ["/e/bin/python", "-m", "pip", "check"]


# --- the request's fingerprint: any change to it is seen; an unchanged one costs two reads -------------------------

INSTALLED = {"requests": "2.32.3", "six": "1.16.0", "idna": "3.10", "urllib3": "2.2.3", "pysocks": "1.7.1"}
SECRET = "hunter2-Zq9"
H = "0123456789abcdef" * 4


def files_in(tmp_path, files):
    for name, text in files.items():
        target = tmp_path / "srv" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))


# (what, params and files of the first run, those of the second, is the second a change)
REQUESTS = [
    ("an extra added", {"packages": ["requests==2.32.3"]}, {"packages": ["requests[socks]==2.32.3"]}, True),
    ("a URL target changed", {"packages": ["six @ https://files.example.internal/six-1.16.0-py2.py3-none-any.whl"]},
     {"packages": ["six @ https://files.example.internal/six-1.17.0-py2.py3-none-any.whl"]}, True),
    ("a constraints file added", {"packages": ["requests==2.32.3"]},
     {"packages": ["requests==2.32.3"], "constraints": "{srv}/constraints.txt", "files": {"constraints.txt": "urllib3<2\n"}}, True),
    ("an included file changed", {"packages": [], "requirements": "{srv}/reqs/cuda.txt",
                                  "files": {"reqs/cuda.txt": "-r common.txt\n", "reqs/common.txt": "six>=1.16\n"}},
     {"packages": [], "requirements": "{srv}/reqs/cuda.txt", "files": {"reqs/common.txt": "six>=1.16\nidna\n"}}, True),
    ("a constraint inside a file added", {"packages": [], "requirements": "{srv}/r.txt", "files": {"r.txt": "requests\n"}},
     {"packages": [], "requirements": "{srv}/r.txt", "files": {"r.txt": "requests\n-c c.txt\n", "c.txt": "urllib3<2\n"}}, True),
    ("a hash changed", {"packages": [], "requirements": "{srv}/lock.txt", "files": {"lock.txt": f"six==1.16.0 \\\n    --hash=sha256:{H}\n"}},
     {"packages": [], "requirements": "{srv}/lock.txt", "files": {"lock.txt": f"six==1.16.0 \\\n    --hash=sha256:{H[::-1]}\n"}}, True),
    ("an in-file index password changed",
     {"packages": [], "requirements": "{srv}/r.txt",
      "files": {"r.txt": f"--extra-index-url https://ci:{SECRET}@pypi.example.internal/simple\nsix\n"}},
     {"packages": [], "requirements": "{srv}/r.txt",
      "files": {"r.txt": "--extra-index-url https://ci:other-token@pypi.example.internal/simple\nsix\n"}}, True),
    ("a marker changed", {"packages": ["six ; python_version > '3.10'"]}, {"packages": ["six ; python_version > '3.9'"]}, True),
    ("the index changed", {"packages": ["six"]}, {"packages": ["six"], "index_url": "https://pypi.example.internal/simple"}, True),
    ("the backend changed", {"packages": ["six"]}, {"packages": ["six"], "backend": "uv"}, True),
    ("a BOM and CRLF written by another editor", {"packages": [], "requirements": "{srv}/r.txt", "files": {"r.txt": "six==1.16.0\nidna\n"}},
     {"packages": [], "requirements": "{srv}/r.txt", "files": {"r.txt": b"\xef\xbb\xbfsix==1.16.0\r\nidna  # the same\r\n"}}, False),
    ("lines reordered, spacing changed", {"packages": ["six==1.16.0", "idna<4"]}, {"packages": ["idna <4", "six == 1.16.0"]}, False),
]


def request_params(tmp_path, spec):
    spec = dict(spec)
    files_in(tmp_path, spec.pop("files", {}))
    return params(tmp_path, **{k: (v.replace("{srv}", str(tmp_path / "srv")) if isinstance(v, str) else v) for k, v in spec.items()})


@pytest.mark.parametrize("what, first, second, changes", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_a_change_to_the_request_is_seen_and_a_rerun_is_not(tmp_path, env_on_disk, what, first, second, changes):
    p1 = request_params(tmp_path, first)
    record(tmp_path, p1, INSTALLED)
    runner = runner_for(tmp_path, INSTALLED)
    plan = _python_env.PythonEnv(make_host(p1, runner, True, diff_mode=True), lambda: None).plan()
    assert plan.changed is False and len(runner.calls) == 2, plan.result  # no installer, no network
    p2 = request_params(tmp_path, second)
    runner2 = runner_for(tmp_path, INSTALLED)
    if p2["backend"] == "uv":  # the plan resolves with the tool venv's uv (env_on_disk: every path is executable)
        runner2.responses[uv_compile_argv(tmp_path)] = (0, "".join(f"{n}=={v}\n" for n, v in INSTALLED.items()), "")
    plan = _python_env.PythonEnv(make_host(p2, runner2, True, diff_mode=True), lambda: None).plan()
    assert plan.changed is changes, plan.result
    if changes:
        assert plan.result["action"] == "update" and plan.result["reasons"][0].startswith("the request changed")
        assert plan.diff["before"] != plan.diff["after"]
    assert SECRET not in json.dumps([plan.result, plan.diff, (env_on_disk / _venv.STATE_FILE).read_text()])


def test_an_env_made_before_the_fingerprint_is_rebuilt_once(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10"})
    plan = _python_env.PythonEnv(make_host(params(tmp_path), runner, True), lambda: None).plan()
    assert plan.changed and plan.result["action"] == "update"
    assert "made before python_env recorded its request" in plan.result["reasons"][0]
    assert plan.result["added"] == plan.result["upgraded"] == plan.result["removed"] == {}


def test_packages_changed_outside_python_env_are_a_change(tmp_path, env_on_disk):
    record(tmp_path, params(tmp_path), {"six": "1.16.0", "idna": "3.10"})
    runner = runner_for(tmp_path, {"six": "1.16.0", "idna": "3.10", "left-pad": "0.1"})
    plan = _python_env.PythonEnv(make_host(params(tmp_path), runner, True), lambda: None).plan()
    assert plan.changed and "changed outside python_env" in plan.result["reasons"][0]


def test_check_mode_plan_evaluates_markers_and_sees_downgrades(tmp_path, env_on_disk):
    runner = runner_for(tmp_path, {"joblib": "1.5.1", "six": "1.16.0"})
    p = params(tmp_path, packages=["joblib==1.4.2", "six==1.17.0", "attrs ; python_version > '3.11'",
                                   "tensorflow-macos ; sys_platform == 'darwin'", "idna ; python_version >= '3.11'"])
    result = run(p, runner, True, lambda: None)[1]
    assert result["downgraded"] == {"joblib": {"from": "1.5.1", "to": "==1.4.2"}}
    assert result["upgraded"] == {"six": {"from": "1.16.0", "to": "==1.17.0"}}
    assert result["added"] == {"idna": "(new)"}  # the target is Python 3.11 on Linux


def test_a_build_from_a_hash_lock_with_an_in_file_index_records_the_request_and_a_rerun_is_two_reads(tmp_path, monkeypatch):
    gen = tmp_path / "envs" / ".e.mlhost-envs" / "g1"
    monkeypatch.setattr(_venv, "new_generation", lambda path: str(gen))
    (tmp_path / "envs").mkdir()
    files_in(tmp_path, {"app/requirements.txt": f"\ufeff--extra-index-url https://ci:{SECRET}@pypi.example.internal/simple\r\n"
                                                f"-r lock.txt\r\n",
                        "app/lock.txt": f"six==1.17.0 \\\n    --hash=sha256:{H}\n"})
    req = str(tmp_path / "srv" / "app" / "requirements.txt")
    p = params(tmp_path, packages=[], requirements=req, lock_file=str(tmp_path / "e.lock"))
    gpy = str(gen / "bin" / "python")
    installed = {"six": "1.17.0", "pip": "24.0"}
    runner = Building({
        ("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", ""),
        ("/usr/bin/python3", "-m", "venv", str(gen)): (0, "", ""),
        (gpy, "-m", "pip", "install", "--no-warn-script-location", "-r", req): (0, "", ""),  # the user's file, as it is
        (gpy, "-m", "pip", "check"): (0, "No broken requirements found.\n", ""),
        new_env_check(gpy, installed)[0]: new_env_check(gpy, installed)[1],
    })
    plan, result = run(p, runner, False, lambda: None)
    assert result["changed"] and result["added"] == {"six": "1.17.0"}
    state = (gen / _venv.STATE_FILE).read_text()
    assert SECRET not in state and SECRET not in json.dumps([plan.result, plan.diff, result])
    assert "--extra-index-url https://***@pypi.example.internal/simple" in json.loads(state)["request"]
    monkeypatch.setattr(os, "access", lambda path, mode: True)
    rerun = runner_for(tmp_path, installed)
    plan = _python_env.PythonEnv(make_host(p, rerun, True), lambda: None).plan()
    assert plan.changed is False and len(rerun.calls) == 2


def test_a_new_env_s_plan_evaluates_markers_with_the_target_interpreter(tmp_path):
    """The interpreter's own marker environment (Python 3.11 on Linux), read in the same command as its version."""
    (tmp_path / "envs").mkdir()
    markers = json.loads(probe_output({}))["markers"]
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n" + json.dumps(markers) + "\n", "")})
    p = params(tmp_path, packages=["six ; python_version > '3.11'", "tensorflow-macos ; sys_platform == 'darwin'",
                                   "idna ; python_version == '3.11'"])
    plan = _python_env.PythonEnv(make_host(p, runner, True), lambda: None).plan()
    assert plan.result["action"] == "create" and plan.result["added"] == {"idna": "(new)"} and len(runner.calls) == 1


def test_a_tool_venv_that_cannot_get_pip_falls_back_to_ensurepip_with_a_warning(tmp_path, monkeypatch):
    """No pip wheel on the host and the pinned one not to be had (offline, an empty wheelhouse): the plan goes on with
    ensurepip (ml_host's build tools may install python3-venv after its validate phase planned this; the bench's
    fresh pip-backend host is one), names the wheel and its sha256 in a warning, and makes nothing in check mode."""
    monkeypatch.setattr(rq, "_pip_wheels", lambda: [])
    (tmp_path / "wheelhouse").mkdir()
    p = params(tmp_path, backend="uv", offline=True, find_links=[str(tmp_path / "wheelhouse")])
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", "")})
    worker = _python_env.PythonEnv(make_host(p, runner, True), lambda: None, lambda: [])
    plan = worker.plan()
    assert plan.changed and ("tools", "uv") in plan.steps and worker.work["tool_pip_wheel"] is None
    assert any(_venv.PIP_WHEEL in w and _venv.PIP_WHEEL_SHA256 in w and "ensurepip" in w for w in plan.warnings)
    assert not (tmp_path / "tools").exists() and not (tmp_path / "envs").exists()


def test_a_host_pip_wheel_makes_the_tool_venv_without_ensurepip(tmp_path, monkeypatch):
    """With the host's own pip wheel the plan keeps it for the tool venv: --without-pip, the wheel as a zipapp."""
    monkeypatch.setattr(rq, "_pip_wheels", lambda: ["/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl"])
    p = params(tmp_path, backend="uv")
    runner = FakeRunner({("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", "")})
    worker = _python_env.PythonEnv(make_host(p, runner, True), lambda: None, lambda: [])
    plan = worker.plan()
    assert plan.changed and ("tools", "uv") in plan.steps
    assert worker.work["tool_pip_wheel"] == "/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl"


def uv_compile_argv(tmp_path, files=None):
    files = files if files is not None else [os.path.join(tempfile.gettempdir(), "mlhost-plan-requirements.txt")]
    return (str(tmp_path / "tools" / "venv" / "bin" / "uv"), "pip", "compile", "--no-config", "--python", "/usr/bin/python3",
            "-q", "--no-header", "--no-annotate", *files)


RESOLVE = pathlib.Path(__file__).parents[2] / "fixtures" / "resolve"
RESOLVED = {"certifi": "2026.10.19.post1", "charset-normalizer": "3.5.3", "idna": "3.20", "pysocks": "1.7.1",
            "pyyaml": "6.0.2", "requests": "2.32.3", "six": "1.17.0", "urllib3": "1.26.20"}


def test_uv_compile_output_is_read_as_the_whole_pinned_set():
    """Real uv 0.13.9 output (fixtures/resolve): extras' dependencies in, the false marker out, the URL's version from
    the wheel's name, the constraint's downgrade; with hashes the same set."""
    plain = _python_env._resolved_uv((RESOLVE / "uv-0.13.9-compile.txt").read_text())
    assert plain == RESOLVED
    assert _python_env._resolved_uv((RESOLVE / "uv-0.13.9-compile-hashes.txt").read_text()) == RESOLVED


def test_pip_report_is_read_and_agrees_with_uv():
    """Real pip 26.3 --dry-run --report output of the same request: the same set, names canonical (PyYAML, PySocks)."""
    assert _python_env._resolved_pip((RESOLVE / "pip-26.3-dry-run-report.json").read_text()) == RESOLVED


@pytest.mark.parametrize("text", ["-e git+https://example.invalid/x.git#egg=x\n", "what is this\n"])
def test_uv_output_the_module_cannot_read_is_refused_by_the_reader(text):
    with pytest.raises(ValueError):
        _python_env._resolved_uv(text)


def test_a_url_without_a_wheel_name_keeps_the_url_masked():
    out = _python_env._resolved_uv("x @ git+https://ci:tok3n@git.example.internal/x.git@v1\n")
    assert out["x"].startswith("@ ") and "tok3n" not in out["x"]


def check_mode_update(tmp_path, env_on_disk, answer, diff=True, check=True):
    before = {"requests": "2.32.3", "urllib3": "2.8.0", "idna": "3.20", "certifi": "2026.10.19.post1",
              "charset-normalizer": "3.5.3", "left-over": "1.0"}
    p_old = params(tmp_path, backend="uv", packages=["requests==2.32.3"])
    record(tmp_path, p_old, before)
    p = params(tmp_path, backend="uv", packages=["requests[socks]==2.32.3", "urllib3<2", "pyyaml==6.0.2"])
    runner = runner_for(tmp_path, before)
    runner.responses[uv_compile_argv(tmp_path)] = answer
    worker = _python_env.PythonEnv(make_host(p, runner, check, diff_mode=diff), lambda: None, lambda: [])
    return worker.plan(), runner


def test_check_mode_plans_the_installers_resolution_transitive_packages_included(tmp_path, env_on_disk):
    """A changed request in check mode: uv resolves it, and added / removed / upgraded / downgraded are the whole set
    the real run installs (PySocks through the extra, urllib3 downgraded by the constraint, a package no longer
    needed removed), not only the lines asked; --diff shows the resolved set."""
    answer = (0, (RESOLVE / "uv-0.13.9-compile.txt").read_text(), "")
    plan, runner = check_mode_update(tmp_path, env_on_disk, answer)
    r = plan.result
    assert plan.changed and r["resolution"] == "uv pip compile"
    assert r["added"] == {"pysocks": "1.7.1", "pyyaml": "6.0.2", "six": "1.17.0"}
    assert r["downgraded"] == {"urllib3": {"from": "2.8.0", "to": "1.26.20"}}
    assert r["removed"] == {"left-over": "1.0"} and r["upgraded"] == {}
    resolved_part = plan.diff["after"].partition("# packages (resolved)\n")[2]
    assert resolved_part == "".join(f"{n}=={v}\n" for n, v in sorted(RESOLVED.items()))
    assert list(uv_compile_argv(tmp_path)) in runner.calls
    assert not os.path.exists(uv_compile_argv(tmp_path)[-1]), "the plan's request file is removed"


def test_a_real_run_without_diff_does_not_resolve(tmp_path, env_on_disk):
    plan, runner = check_mode_update(tmp_path, env_on_disk, (0, "", ""), diff=False, check=False)
    assert plan.changed and "resolution" not in plan.result
    assert list(uv_compile_argv(tmp_path)) not in runner.calls


def test_a_request_the_installer_cannot_resolve_is_refused_in_the_plan(tmp_path, env_on_disk):
    answer = (1, "", "error: No solution found when resolving dependencies\n  cause: Because urllib3<2 and "
              "https://ci:tok3n@pypi.example.internal/simple has no ...\n")
    with pytest.raises(ModuleError) as err:
        check_mode_update(tmp_path, env_on_disk, answer)
    assert "cannot be resolved" in err.value.msg and "No solution found" in err.value.msg
    assert "tok3n" not in err.value.msg and "nothing was changed" in err.value.msg


@pytest.mark.parametrize("action, old_python, expected", [
    ("update", "3.11.2", ["six"]),              # only the requested distribution whose version moved
    ("update", "3.12.1", ["idna", "six"]),      # another Python: every wheel is new, import them all
    ("create", None, ["idna", "six"]),
    ("rebuild", "3.11.2", ["idna", "six"]),
])
def test_the_import_check_imports_only_what_changed_on_an_update(tmp_path, action, old_python, expected):
    """#20: the import check of an update imports only requested distributions that are new or moved; the installer's
    dependency check still runs on the whole set."""
    import subprocess
    import sys

    worker = _python_env.PythonEnv(make_host(params(tmp_path), FakeRunner({}), False), lambda: None, lambda: [])
    worker.work["action"] = action
    worker.probed_before = {"python": old_python, "packages": {"idna": "3.10", "six": "1.16.0"}} if old_python else None
    site = tmp_path / "site"
    for name, version in (("idna", "3.10"), ("six", "1.17.0"), ("new-dep", "1.0")):
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(name.replace("-", "_") + "\n")
        (site / f"{name.replace('-', '_')}.py").write_text("")
    argv = _venv.new_env_check_argv(sys.executable, ["auto"], ["idna", "six"], worker.import_baseline())
    # This interpreter (-S: only the site above) stands in for the new generation's: 3.11.2 reads as its own minor.
    argv[5] = argv[5].replace('"3.11.2"', json.dumps("%d.%d.0" % sys.version_info[:2])).replace('"3.12.1"', '"2.7.0"')
    code = f"import sys; sys.path.insert(0, {str(site)!r}); exec(compile({argv[3]!r}, 'check', 'exec'))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, *argv[4:]], capture_output=True, text=True, check=True).stdout
    probe, imports = _venv.read_new_env_check(out)
    assert probe["packages"]["six"] == "1.17.0" and imports["checked"] == expected


# --- #20: one interpreter start where one answers --------------------------------------------------------------------


@pytest.fixture
def env_of_this_interpreter(tmp_path, env_on_disk):
    """The environment's bin/python links to the very interpreter python names (a venv made from it)."""
    interp = tmp_path / "usr" / "bin" / "python3.11"
    interp.parent.mkdir(parents=True)
    interp.write_text("#!/bin/false\n")
    interp.chmod(0o755)
    (env_on_disk / "bin" / "python").unlink()
    (env_on_disk / "bin" / "python").symlink_to(interp)
    return str(interp)


def test_an_unchanged_env_of_the_same_interpreter_is_one_probe(tmp_path, env_of_this_interpreter):
    p = params(tmp_path, python=env_of_this_interpreter)
    packages = {"six": "1.16.0", "idna": "3.10", "pip": "24.0"}
    record(tmp_path, p, packages)
    env_python = str(tmp_path / "envs" / "e" / "bin" / "python")
    runner = FakeRunner({(env_python, "-I", "-c", _venv.PROBE): (0, probe_output(packages), "")})
    for check_mode in (True, False):
        plan, result = run(p, runner, check_mode, lambda: None)
        assert result["changed"] is False and result["python_version"] == "3.11.2"
    assert runner.calls == [[env_python, "-I", "-c", _venv.PROBE]] * 2  # the interpreter's own probe never ran


@pytest.mark.parametrize("drift", ["changed by hand", "removed by hand", "request"])
def test_the_one_probe_still_sees_every_drift(tmp_path, env_of_this_interpreter, drift):
    p = params(tmp_path, python=env_of_this_interpreter)
    record(tmp_path, p, {"six": "1.16.0", "idna": "3.10"})
    now = {"changed by hand": {"six": "1.17.0", "idna": "3.10"}, "removed by hand": {"six": "1.16.0"},
           "request": {"six": "1.16.0", "idna": "3.10"}}[drift]
    env_python = str(tmp_path / "envs" / "e" / "bin" / "python")
    runner = FakeRunner({(env_python, "-I", "-c", _venv.PROBE): (0, probe_output(now), "")})
    asked = params(tmp_path, python=env_of_this_interpreter, packages=["six==1.16.0", "idna<3.9"] if drift == "request" else p["packages"])
    result = run(asked, runner, True, lambda: None)[1]
    assert result["changed"] is True and result["action"] == "update" and result["reasons"]


def test_an_env_that_does_not_answer_has_the_interpreter_probed_and_is_rebuilt(tmp_path, env_of_this_interpreter):
    p = params(tmp_path, python=env_of_this_interpreter)
    env_python = str(tmp_path / "envs" / "e" / "bin" / "python")
    runner = FakeRunner({(env_python, "-I", "-c", _venv.PROBE): (1, "", "Segmentation fault"),
                         (env_of_this_interpreter, "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", "")})
    result = run(p, runner, True, lambda: None)[1]
    assert result["action"] == "rebuild" and "broken" in result["reasons"][0] and len(runner.calls) == 2


def test_the_builds_run_the_interpreter_a_shim_names(tmp_path, monkeypatch):
    """A pyenv shim is run once, for its probe; the venv is made from the interpreter it ran."""
    real = tmp_path / "versions" / "3.11.2" / "bin" / "python3.11"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/false\n")
    real.chmod(0o755)
    shim = "/usr/bin/python3"
    runner = FakeRunner({(shim, "-I", "-c", INTERPRETER_PROBE): (0, f"3.11.2\n{{}}\n{json.dumps(str(real))}\n", "")})
    worker = _python_env.PythonEnv(make_host(params(tmp_path, python=shim), runner, True), lambda: None, lambda: [])
    plan = worker.plan()
    assert plan.result["action"] == "create" and worker.work["python"] == str(real)
    gone = FakeRunner({(shim, "-I", "-c", INTERPRETER_PROBE): (0, '3.11.2\n{}\n"/nonexistent/python"\n', "")})
    worker = _python_env.PythonEnv(make_host(params(tmp_path, python=shim), gone, True), lambda: None, lambda: [])
    worker.plan()
    assert worker.work["python"] == shim  # an executable that is not there: the interpreter as found


@pytest.mark.parametrize("case, answer, deps_rc, message", [
    ("import fails", "import", 0, "does not import: six: ImportError: no"),
    ("import crashes", "crash", 0, "import check in the new environment did not run"),
    ("deps first", "import", 1, "dependencies are not consistent"),
    ("no probe", "nothing", 0, "does not answer its own probe"),
])
def test_a_new_generation_that_fails_its_one_check_is_removed_and_the_old_kept(tmp_path, env_on_disk, monkeypatch, case,
                                                                               answer, deps_rc, message):
    p = params(tmp_path, packages=["six==1.17.0"])
    gen = tmp_path / "envs" / ".e.mlhost-envs" / "g2"
    monkeypatch.setattr(_venv, "new_generation", lambda path: str(gen))
    gpy = str(gen / "bin" / "python")
    key, ok = new_env_check(gpy, {"six": "1.17.0"}, old=json.dumps({"python": "3.11.2", "packages": {"six": "1.16.0"}}))
    probe_line = "mlhost-probe " + probe_output({"six": "1.17.0"}) + "\n"
    out = {"import": (0, probe_line + "\n" + json.dumps({"checked": ["six"], "failed": {"six": "ImportError: no"}, "missing": []}), ""),
           "crash": (139, probe_line, "Segmentation fault"), "nothing": (1, "", "boom")}[answer]
    runner = Building({
        ("/usr/bin/python3", "-I", "-c", INTERPRETER_PROBE): (0, "3.11.2\n", ""),
        (str(tmp_path / "envs" / "e" / "bin" / "python"), "-I", "-c", _venv.PROBE): (0, probe_output({"six": "1.16.0"}), ""),
        ("/usr/bin/python3", "-m", "venv", str(gen)): (0, "", ""),
        (gpy, "-m", "pip", "install", "--no-warn-script-location", "-r", str(gen / "mlhost-requirements.txt")): (0, "", ""),
        (gpy, "-m", "pip", "check"): (deps_rc, "six 1.17.0 has requirement x" if deps_rc else "", ""),
        key: out,
    })
    with pytest.raises(ModuleError, match=message):
        run(p, runner, False, lambda: None)
    assert not gen.exists() and os.readlink(tmp_path / "envs" / "e") == str(env_on_disk)
    assert ok[0] == 0
