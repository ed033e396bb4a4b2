# SPDX-License-Identifier: GPL-3.0-or-later
"""container_toolkit: version parsing on the engines' real --version lines, the daemon.json merge, the containerd
drop-in per config version, the main config's import, and whole runs on fixture trees with faked commands
(tests/unit/fixtures/containers/README.md says where each fixture comes from)."""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _container_toolkit as ctk
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult
from ansible_collections.mlinfra.mlhost.plugins.module_utils._sysroot import Sysroot
from mlhost_testlib import FakeRunner, build_tree, fixture_text, make_host, run_worker, snapshot

FIX = "containers/"


def fx(name: str) -> str:
    return fixture_text(FIX + name)


# Versions -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, version, config_version", [
    ("containerd-1.6.20-debian12.version", "1.6.20", 2),
    ("containerd-1.7.24-debian13.version", "1.7.24", 2),
    ("containerd-2.1.4-upstream.version", "2.1.4", 3),
])
def test_containerd_versions_and_the_config_version_each_reads(name, version, config_version):
    assert ctk.parse_containerd_version(fx(name)) == version
    assert ctk.config_version_for(version) == config_version


def test_docker_and_podman_versions():
    assert ctk.parse_docker_version(fx("dockerd-26.1.5-debian13.version")) == "26.1.5"
    assert ctk.parse_docker_version(fx("dockerd-20.10.24-debian12.version")) == "20.10.24"
    assert ctk.parse_podman_version(fx("podman-5.4.2-debian13.version")) == "5.4.2"
    assert ctk.parse_containerd_version("containerd: command not found") is None


def test_a_containerd_without_drop_ins_is_refused():
    with pytest.raises(ModuleError, match="too old"):
        ctk.config_version_for("1.4.13")


# The containerd drop-in -------------------------------------------------------------------


def test_dropin_for_containerd_1_uses_the_grpc_cri_plugin_at_version_2():
    text = ctk.containerd_dropin(2, True, "1.7.24")
    assert "\nversion = 2\n" in text
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in text
    assert 'BinaryName = "/usr/bin/nvidia-container-runtime"' in text
    assert "enable_cdi = true" in text and "io.containerd.cri.v1.runtime" not in text
    assert text.startswith("# Written by mlinfra.mlhost")


def test_dropin_for_containerd_2_uses_the_split_cri_runtime_plugin_at_version_3():
    text = ctk.containerd_dropin(3, True, "2.1.4")
    assert "\nversion = 3\n" in text
    assert '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia]' in text
    assert "io.containerd.grpc.v1.cri" not in text


def test_containerd_1_6_gets_no_cdi_setting():
    assert "enable_cdi" not in ctk.containerd_dropin(2, True, "1.6.20")


@pytest.mark.parametrize("name, imports, version", [
    ("config-admin-imports-v2.toml", True, 2),
    ("config-admin-imports-v3.toml", True, 3),
    ("config-admin-no-imports.toml", False, 2),
])
def test_main_config_imports_and_version(name, imports, version):
    text = fx(name)
    assert ctk.imports_dropin(text) is imports
    assert ctk.config_version_of(text) == version


def test_our_main_config_over_the_package_file_gives_the_package_file_back():
    package = fx("config.toml.debian13-package")
    ours = ctk.main_config(2, package, "abc")
    assert ours.startswith("# Written by mlinfra.mlhost")
    assert ctk.imports_dropin(ours) and ctk.config_version_of(ours) == 2
    assert ctk.package_part(ours) == package
    made = ctk.main_config(3)
    assert ctk.package_part(made) is None and ctk.config_version_of(made) == 3 and ctk.imports_dropin(made)


def test_conffiles_are_read_from_dpkg_query():
    found = ctk.parse_conffiles(fx("containerd-conffiles.debian13"))
    assert found == {"/etc/containerd/config.toml": "773cf1c5a249197a8ef37a08ac168414"}
    # The package's file is the one dpkg recorded: the module may tell it from an administrator's.
    assert hashlib.md5(fx("config.toml.debian13-package").encode()).hexdigest() == found["/etc/containerd/config.toml"]


def test_the_dropin_carries_containerds_own_containerd_table_and_the_nvidia_runtime():
    # containerd 1.7 replaces the CRI plugin's whole `containerd` table with an imported one (runc was lost with a
    # drop-in that named only the nvidia runtime: seen in the test bed), so the drop-in carries it from the dump.
    section = ctk.cri_containerd_section(fx("containerd-1.7.24-dump-package-config.toml"), "io.containerd.grpc.v1.cri")
    assert section[0] == '[plugins."io.containerd.grpc.v1.cri".containerd]'
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]' in section
    assert '  snapshotter = "overlayfs"' in section and '  default_runtime_name = "runc"' in section
    assert not [ln for ln in section if "image_decryption" in ln or "bin_dir" in ln]
    text = ctk.containerd_dropin(2, False, "1.7.24", section)
    assert text.index("runtimes.runc]") < text.index("runtimes.nvidia]")
    assert "SystemdCgroup = true" not in text
    # Our own nvidia tables in a later dump are left out and written once again, the same: a rerun changes nothing.
    dump_with_ours = fx("containerd-1.7.24-dump-package-config.toml") + NVIDIA_TABLE
    assert ctk.containerd_dropin(2, False, "1.7.24", ctk.cri_containerd_section(dump_with_ours, "io.containerd.grpc.v1.cri")) == text


def test_runc_with_the_systemd_cgroup_driver_gives_the_nvidia_runtime_the_same():
    dump = fx("containerd-1.7.24-dump-package-config.toml").replace("SystemdCgroup = false", "SystemdCgroup = true")
    section = ctk.cri_containerd_section(dump, "io.containerd.grpc.v1.cri")
    text = ctk.containerd_dropin(2, True, "1.7.24", section)
    assert text.rstrip().endswith('BinaryName = "/usr/bin/nvidia-container-runtime"\n  SystemdCgroup = true'.rstrip())


def test_a_containerd_2_dump_in_single_quotes_is_read():
    dump = ("[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'runc'\n"
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n"
            "[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'overlayfs'\n")
    section = ctk.cri_containerd_section(dump, "io.containerd.cri.v1.runtime")
    assert len(section) == 4 and ctk.runc_systemd_cgroup(section)


# daemon.json ------------------------------------------------------------------------------


def test_the_admins_keys_are_kept_and_the_runtime_and_cdi_added():
    text, warnings = ctk.merge_daemon_json(fx("daemon-admin.json"), True, "26.1.5")
    merged = json.loads(text)
    admin = json.loads(fx("daemon-admin.json"))
    for key, value in admin.items():
        if key != "runtimes":
            assert merged[key] == value
    assert merged["runtimes"]["crun"] == {"path": "/usr/bin/crun"}
    assert merged["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    assert merged["features"] == {"cdi": True} and not warnings
    assert list(merged)[:4] == list(admin)[:4]  # the admin's order kept
    again, dummy = ctk.merge_daemon_json(text, True, "26.1.5")
    assert again is None


def test_docker_20_gets_the_runtime_without_cdi_and_a_warning():
    text, warnings = ctk.merge_daemon_json(None, True, "20.10.24")
    assert json.loads(text) == {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}
    assert "no CDI support" in warnings[0]


def test_what_nvidia_ctk_wrote_is_taken_as_ours():
    text, dummy = ctk.merge_daemon_json(fx("daemon-nvidia-ctk.json"), False, "26.1.5")
    assert text is None


@pytest.mark.parametrize("name, words", [
    ("daemon-trailing-comma.json", "not valid JSON"),
    ("daemon-comments.json", "no comments"),
    ("daemon-duplicate-key.json", "appears twice"),
    ("daemon-foreign-nvidia.json", "did not write"),
    ("daemon-cdi-false.json", "features.cdi to false"),
])
def test_daemon_json_the_module_cannot_merge_safely_is_refused(name, words):
    with pytest.raises(ModuleError, match=words) as exc:
        ctk.merge_daemon_json(fx(name), True, "26.1.5")
    assert "Nothing was changed" in exc.value.msg


def test_a_daemon_json_that_is_no_object_is_refused():
    with pytest.raises(ModuleError, match="not an object"):
        ctk.merge_daemon_json('["log-driver"]', True, "26.1.5")
    with pytest.raises(ModuleError, match="runtimes is a list"):
        ctk.merge_daemon_json('{"runtimes": []}', True, "26.1.5")


def test_absent_removes_only_our_runtime():
    text, dummy = ctk.merge_daemon_json(fx("daemon-admin.json"), True, "26.1.5")
    removed, dummy = ctk.merge_daemon_json(text, True, "26.1.5", "absent")
    data = json.loads(removed)
    assert "nvidia" not in data["runtimes"] and data["runtimes"]["crun"] and data["live-restore"] is True
    assert ctk.merge_daemon_json(removed, True, "26.1.5", "absent")[0] is None


# Options ------------------------------------------------------------------------------------


def params(**over):
    base = {"state": "present", "runtimes": [], "cdi": True, "cdi_spec": "/etc/cdi/nvidia.yaml", "source": "preinstalled",
            "version": "", "hold": True, "restart": True, "require_engines": True, "repo_url": "", "repo_key": "",
            "repo_key_sha256": "", "repo_key_fingerprints": [], "pkg_mgr": "apt", "update_cache": True,
            "cache_valid_time": 86400, "lock_timeout": 300}
    base.update(over)
    return base


@pytest.mark.parametrize("over, words", [
    ({"cdi_spec": "/etc/cdi/nvidia.yaml\n[Service]"}, "control character"),
    ({"cdi_spec": "/etc/cdi/../passwd.yaml"}, "must be an absolute path"),
    ({"cdi_spec": "etc/cdi/nvidia.yaml"}, "must be an absolute path"),
    ({"cdi_spec": "/etc/cdi/nvidia.conf"}, "ending in .yaml or .json"),
    ({"cdi_spec": "/etc/cdi/$(reboot).yaml"}, "must be an absolute path"),
    ({"version": "1.18.0-1; rm -rf /"}, "not a package version"),
    ({"version": "1.18"}, "with its revision"),
    ({"version": "1.18.0-1", "state": "absent"}, "state absent removes"),
    ({"runtimes": ["docker", "docker"]}, "twice"),
    ({"runtimes": ["cri-o"]}, "not a runtime"),
    ({"runtimes": ["podman"], "cdi": False}, "CDI only"),
])
def test_bad_options_are_refused_before_anything_is_read(over, words):
    with pytest.raises(ModuleError, match=words.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")) as exc:
        ctk.check_options(params(**over))
    assert "Nothing was changed" in exc.value.msg


def test_good_versions_are_taken():
    for version in ("1.18.0-1", "0:1.18.0-1", "1.18.0~rc.1-1"):
        ctk.check_options(params(version=version))


# Whole runs ---------------------------------------------------------------------------------

DPKG = tuple(["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", *ctk.PACKAGES])
DOCKERD, CONTAINERD, PODMAN = "/usr/bin/dockerd", "/usr/bin/containerd", "/usr/bin/podman"
SMI, CTK = "/usr/bin/nvidia-smi", "/usr/bin/nvidia-ctk"
DUMP = fx("containerd-1.7.24-dump-package-config.toml")
NVIDIA_TABLE = '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n          runtime_type = "io.containerd.runc.v2"\n'
SMI_L = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2b1f8c9e-5d3a-4e7b-9c1d-0a1b2c3d4e5f)\n"


def dpkg_out(held=True, version="1.18.0-1"):
    flag = "hi " if held else "ii "
    return "".join(f"{n}\t{flag}\t{version}\n" for n in ctk.PACKAGES)


class CdiRunner(FakeRunner):
    """The door, and nvidia-ctk cdi generate writing its --output as the real one does (a STAND-IN spec)."""

    def run(self, argv, check=True, data=None, timeout=None, env=None, cwd=None, pass_fds=()):
        answer = self.responses.get(tuple(argv))
        if isinstance(answer, str) and answer.startswith("dump"):
            # containerd config dump: what containerd would load, with the drop-in once it is there.
            self.calls.append(list(argv))
            dropin = pathlib.Path(argv[2]).parent / "conf.d/99-mlhost-nvidia.toml"
            if not dropin.exists():
                return CommandResult(0, DUMP, "")
            if answer == "dump":
                return CommandResult(0, DUMP + NVIDIA_TABLE, "")
            return CommandResult(1, "", "containerd: failed to load TOML: unsupported config version `3`")
        result = super().run(argv, check, data, timeout, env, cwd)
        if argv[:3] == [CTK, "cdi", "generate"]:
            out = argv[3].split("=", 1)[1]
            pathlib.Path(out).write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: []  # STAND-IN\n")
        if check and result is not None and result.rc != 0:
            raise ModuleError(f"{argv} failed")
        return result


def tree(tmp_path, extra=None):
    files = {"etc/os-release": fixture_text("os-release/debian13"), "usr/bin/dpkg": ""}
    files.update(extra or {})
    return build_tree(tmp_path, files)


def answers(root, held=True, docker=True, containerd=True, podman=True, driver=True, dump_ok=True):
    out = {DPKG: (0, dpkg_out(held), ""),
           (DOCKERD, "--version"): (0, fx("dockerd-26.1.5-debian13.version"), ""),
           (CONTAINERD, "--version"): (0, fx("containerd-1.7.24-debian13.version"), ""),
           (PODMAN, "--version"): (0, fx("podman-5.4.2-debian13.version"), ""),
           (DOCKERD, "--validate", "--config-file", str(root / "etc/docker/.daemon.json.mlhost-check")): (0, "configuration OK\n", ""),
           ("systemctl", "is-active", "docker"): (0, "active\n", ""),
           ("systemctl", "restart", "docker"): (0, "", ""),
           ("systemctl", "is-active", "containerd"): (3, "inactive\n", ""),
           (CONTAINERD, "--config", str(root / "etc/containerd/config.toml"), "config", "dump"):
               "dump" if dump_ok else "dump-fails-with-the-dropin",
           (CONTAINERD, "config", "dump"): (0, DUMP, ""),
           (SMI, "-L"): (0, SMI_L, "") if driver else (9, "", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."),
           (SMI, "--query-gpu=driver_version", "--format=csv,noheader"): (0, "580.95.05\n", ""),
           (CTK, "cdi", "generate", f"--output={root}/etc/cdi/.mlhost-cdi-new/nvidia.yaml", "--format=yaml"): (0, "", ""),
           ("dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", "nvidia-container-toolkit"):
               (0, "nvidia-container-toolkit\thi \t1.18.0-1\n", ""),
           ("apt-mark", "hold", *ctk.PACKAGES): (0, "", "")}
    programs = {"dockerd": DOCKERD, "containerd": CONTAINERD, "podman": PODMAN, "nvidia-smi": SMI, "nvidia-ctk": CTK}
    if not docker:
        programs.pop("dockerd")
    return out, programs


def run(root, check=False, responses=None, programs=None, diff=False, **over):
    default_responses, default_programs = answers(root)
    runner = CdiRunner(responses if responses is not None else default_responses,
                       programs if programs is not None else default_programs)
    host = make_host(params(**over), runner, check_mode=check, sysroot=Sysroot(str(root)), diff=diff)
    return run_worker(ctk.ContainerToolkit, host), runner


ALL = ["docker", "containerd", "podman"]


def test_first_run_configures_all_three_and_generates_the_spec_then_a_rerun_changes_nothing(tmp_path):
    root = tree(tmp_path, {"etc/docker/daemon.json": fx("daemon-admin.json")})
    result, runner = run(root, runtimes=ALL)
    assert result["changed"]
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    assert daemon["data-root"] == "/srv/docker" and daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert daemon["features"]["cdi"] is True
    assert ctk.imports_dropin((root / "etc/containerd/config.toml").read_text())
    assert "io.containerd.grpc.v1.cri" in (root / "etc/containerd/conf.d/99-mlhost-nvidia.toml").read_text()
    assert "STAND-IN" in (root / "etc/cdi/nvidia.yaml").read_text()
    record = ctk.read_state((root / "etc/cdi/nvidia.yaml.mlhost-state").read_text())
    assert record["driver"] == "580.95.05" and record["toolkit"] == "1.18.0-1" and record["mig_config_sha256"] is None
    assert ["systemctl", "restart", "docker"] in runner.calls
    assert ["systemctl", "restart", "containerd"] not in runner.calls  # inactive: not started by us
    assert not (root / "etc/docker/.daemon.json.mlhost-check").exists()
    assert not (root / "etc/cdi/.mlhost-cdi-new").exists()
    before = snapshot(root)
    again, runner = run(root, runtimes=ALL)
    assert not again["changed"] and again["cdi"]["state"] == "current"
    assert snapshot(root) == before
    assert not [c for c in runner.calls if c[:2] in (["systemctl", "restart"],) or "generate" in c]


def test_check_mode_is_the_plan_and_changes_nothing(tmp_path):
    root = tree(tmp_path, {"etc/docker/daemon.json": fx("daemon-admin.json")})
    before = snapshot(root)
    result, runner = run(root, check=True, diff=True, runtimes=ALL)
    assert result["changed"] and snapshot(root) == before
    assert result["cdi"]["state"] == "generated"
    headers = [d["before_header"] for d in result["diff"]]
    assert "/etc/docker/daemon.json" in headers and "/etc/containerd/conf.d/99-mlhost-nvidia.toml" in headers
    assert not [c for c in runner.calls if "--validate" in c or "restart" in c or "generate" in c]


def test_without_a_loaded_driver_the_spec_is_skipped_with_a_warning(tmp_path):
    root = tree(tmp_path)
    responses, programs = answers(root, driver=False)
    result, runner = run(root, responses=responses, programs=programs, runtimes=["podman"])
    assert result["cdi"]["state"] == "skipped" and not result["changed"]
    assert any("not loaded" in w and "couldn't communicate" in w for w in result["warnings"])
    assert not (root / "etc/cdi/nvidia.yaml").exists()


def test_a_mig_layout_change_regenerates_the_spec(tmp_path):
    root = tree(tmp_path)
    run(root, runtimes=["podman"])
    (root / "etc/nvidia-mig-manager").mkdir(parents=True)
    (root / "etc/nvidia-mig-manager/mlhost-config.yaml").write_text("version: v1\n")
    result, runner = run(root, runtimes=["podman"])
    assert result["changed"] and any("mig_config_sha256" in a for a in result["actions"])
    assert ctk.read_state((root / "etc/cdi/nvidia.yaml.mlhost-state").read_text())["mig_config_sha256"]


def test_a_driver_change_regenerates_the_spec(tmp_path):
    root = tree(tmp_path)
    run(root, runtimes=["podman"])
    responses, programs = answers(root)
    responses[(SMI, "--query-gpu=driver_version", "--format=csv,noheader")] = (0, "590.48.01\n", "")
    result, dummy = run(root, responses=responses, programs=programs, runtimes=["podman"])
    assert result["changed"] and "driver" in result["actions"][-1]


def test_a_spec_the_collection_did_not_generate_is_refused(tmp_path):
    root = tree(tmp_path, {"etc/cdi/nvidia.yaml": "cdiVersion: 0.5.0\n# the admin's\n"})
    before = snapshot(root)
    with pytest.raises(ModuleError, match="did not generate it"):
        run(root, runtimes=["podman"])
    assert snapshot(root) == before


def test_the_admins_containerd_config_without_the_import_is_refused_with_the_line(tmp_path):
    root = tree(tmp_path, {"etc/containerd/config.toml": fx("config-admin-no-imports.toml")})
    responses, programs = answers(root)
    responses[("dpkg-query", "-W", "-f", "${Conffiles}\\n", "containerd")] = (0, fx("containerd-conffiles.debian13"), "")
    before = snapshot(root)
    with pytest.raises(ModuleError, match=r'imports = \["/etc/containerd/conf.d/\*.toml"\]') as exc:
        run(root, responses=responses, programs=programs, runtimes=["containerd"])
    assert "does not edit that file" in exc.value.msg and snapshot(root) == before


def test_the_packages_unchanged_config_is_replaced_by_ours_and_given_back_on_absent(tmp_path):
    package = fx("config.toml.debian13-package")
    root = tree(tmp_path, {"etc/containerd/config.toml": package})
    responses, programs = answers(root)
    responses[("dpkg-query", "-W", "-f", "${Conffiles}\\n", "containerd")] = (0, fx("containerd-conffiles.debian13"), "")
    result, dummy = run(root, responses=responses, programs=programs, runtimes=["containerd"], cdi=False)
    ours = (root / "etc/containerd/config.toml").read_text()
    assert result["changed"] and ctk.imports_dropin(ours) and ctk.package_part(ours) == package
    responses[DPKG] = (0, dpkg_out(), "")
    responses[("apt-mark", "unhold", *ctk.PACKAGES)] = (0, "", "")
    responses[("apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300", "remove", *ctk.PACKAGES)] = (0, "", "")
    removed, dummy = run(root, responses=responses, programs=programs, runtimes=["containerd"], cdi=False, state="absent")
    assert removed["changed"] and (root / "etc/containerd/config.toml").read_text() == package
    assert not (root / "etc/containerd/conf.d/99-mlhost-nvidia.toml").exists()


def test_a_containerd_config_that_fails_to_load_puts_the_previous_files_back(tmp_path):
    root = tree(tmp_path, {"etc/containerd/config.toml": fx("config-admin-imports-v2.toml")})
    responses, programs = answers(root, dump_ok=False)
    with pytest.raises(ModuleError, match="previous files were put back"):
        run(root, responses=responses, programs=programs, runtimes=["containerd"])
    assert (root / "etc/containerd/config.toml").read_text() == fx("config-admin-imports-v2.toml")
    assert not (root / "etc/containerd/conf.d/99-mlhost-nvidia.toml").exists()


def test_containerd_2_gets_a_version_3_dropin(tmp_path):
    root = tree(tmp_path, {"etc/containerd/config.toml": fx("config-admin-imports-v3.toml")})
    responses, programs = answers(root)
    responses[(CONTAINERD, "--version")] = (0, fx("containerd-2.1.4-upstream.version"), "")
    run(root, responses=responses, programs=programs, runtimes=["containerd"], cdi=False)
    dropin = (root / "etc/containerd/conf.d/99-mlhost-nvidia.toml").read_text()
    assert "version = 3" in dropin and "io.containerd.cri.v1.runtime" in dropin
    assert (root / "etc/containerd/config.toml").read_text() == fx("config-admin-imports-v3.toml")


def test_invalid_daemon_json_changes_nothing(tmp_path):
    root = tree(tmp_path, {"etc/docker/daemon.json": fx("daemon-comments.json")})
    before = snapshot(root)
    with pytest.raises(ModuleError, match="not valid JSON"):
        run(root, runtimes=ALL)
    assert snapshot(root) == before


def test_a_merge_dockerd_refuses_is_not_written(tmp_path):
    root = tree(tmp_path, {"etc/docker/daemon.json": fx("daemon-admin.json")})
    responses, programs = answers(root)
    responses[(DOCKERD, "--validate", "--config-file", str(root / "etc/docker/.daemon.json.mlhost-check"))] = (
        1, "", "unable to configure the Docker daemon with file: the following directives don't match any configuration option: data-root")
    with pytest.raises(ModuleError, match="dockerd --validate refused"):
        run(root, responses=responses, programs=programs, runtimes=["docker"], cdi=False)
    assert (root / "etc/docker/daemon.json").read_text() == fx("daemon-admin.json")


def test_a_missing_engine_is_refused_or_planned_with_a_warning(tmp_path):
    root = tree(tmp_path)
    responses, programs = answers(root, docker=False)
    with pytest.raises(ModuleError, match="dockerd is not installed.*mlhost_docker"):
        run(root, responses=responses, programs=programs, runtimes=["docker"])
    result, dummy = run(root, check=True, responses=responses, programs=programs, runtimes=["docker"], require_engines=False)
    assert any("not installed yet" in w for w in result["warnings"])


def test_an_exact_version_unholds_installs_and_holds_again(tmp_path, monkeypatch):
    monkeypatch.setattr(_packages.Apt, "cache_age", lambda self: 60.0)
    # The repository files are nvidia_driver's and cuda_toolkit's (tested in test_nvidia_repo.py): none to write here.
    monkeypatch.setattr(ctk._nvidia_repo, "source_files", lambda *args, **kwargs: ({}, ["A" * 40]))
    root = tree(tmp_path)
    responses, programs = answers(root)
    responses[DPKG] = [(0, dpkg_out(True, "1.17.8-1"), ""), (0, dpkg_out(True, "1.18.0-1"), "")]
    responses[("apt-cache", "policy", "nvidia-container-toolkit")] = (
        0, "nvidia-container-toolkit:\n  Installed: 1.17.8-1\n  Candidate: 1.18.0-1\n", "")
    responses[("apt-mark", "unhold", *ctk.PACKAGES)] = (0, "", "")
    install = ("apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef", "-o",
               "Dpkg::Options::=--force-confold", "--no-install-recommends", "install", *[f"{n}=1.18.0-1" for n in ctk.PACKAGES])
    responses[install] = (0, "", "")
    result, runner = run(root, responses=responses, programs=programs, version="1.18.0-1", cdi=False, update_cache=False,
                         source="nvidia_repo")
    assert result["actions"][:3] == [f"unhold {' '.join(ctk.PACKAGES)} (version change)",
                                     f"install {' '.join(n + '=1.18.0-1' for n in ctk.PACKAGES)}",
                                     f"hold {' '.join(ctk.PACKAGES)}"]
    calls = [c[:2] for c in runner.calls]
    assert calls.index(["apt-mark", "unhold"]) < calls.index(["apt-get", "-q"]) < calls.index(["apt-mark", "hold"])
    assert result["installed_version"] == "1.18.0-1" and result["repo_key_fingerprints"] == ["A" * 40]


def test_preinstalled_without_the_toolkit_is_refused(tmp_path):
    root = tree(tmp_path)
    responses, programs = answers(root)
    responses[DPKG] = (0, "", "")
    with pytest.raises(ModuleError, match="source is preinstalled"):
        run(root, responses=responses, programs=programs)


def test_refresh_units_are_pointed_at_our_spec_and_enabled(tmp_path):
    units = {f"usr/lib/systemd/system/{u}": "[Unit]\n" for u in ctk.REFRESH_UNITS}
    root = tree(tmp_path, units)
    responses, programs = answers(root)
    responses[("systemctl", "is-enabled", *ctk.REFRESH_UNITS)] = [(1, "disabled\ndisabled\n", ""), (0, "enabled\nenabled\n", "")]
    responses[("systemctl", "enable", *ctk.REFRESH_UNITS)] = (0, "", "")
    result, runner = run(root, responses=responses, programs=programs, runtimes=["podman"])
    dropin = (root / ctk.REFRESH_DROPIN.lstrip("/")).read_text()
    assert "NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=/etc/cdi/nvidia.yaml" in dropin
    assert ["systemctl", "enable", *ctk.REFRESH_UNITS] in runner.calls
    again, dummy = run(root, responses=responses, programs=programs, runtimes=["podman"])
    assert not again["changed"]


def test_another_nvidia_spec_is_named_in_a_warning(tmp_path):
    root = tree(tmp_path, {"var/run/cdi/nvidia.yaml": "cdiVersion: 0.5.0\n"})
    result, dummy = run(root, check=True, runtimes=["podman"])
    assert any("/var/run/cdi/nvidia.yaml" in w and "drops the devices" in w for w in result["warnings"])
