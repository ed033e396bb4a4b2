#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The built collection, as users get it: `ansible-galaxy collection build`
# yields a tarball that installs, documents itself and runs host_facts, on
# this machine and on a fake Rocky 9 tree holding an H100 (and an NVSwitch) with driver
# 550.54.14 loaded (built from the unit-test fixtures).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work="$REPO/.build/package"
rm -rf "$work"
mkdir -p "$work/dist" "$work/installed"
cd "$REPO"

ansible-galaxy collection build --force --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/mlinfra-mlhost-*.tar.gz)
echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
# Nothing of the suite's tooling, and none of what a used checkout leaves behind (caches, reports,
# bench results, byte code, built docs); of tests/, only tests/config.yml (tests/unit needs bench/ and molecule/).
if tar -tzf "$tarball" | grep -E '^(molecule|scripts|requirements|bench|\.ci|\.build|\.venv|\.ansible|\.pytest_cache|\.cache|mlhost-report|reports|tests/(output|unit|package|testbed|galaxy)|docs/_build)/|__pycache__/|\.pyc$|^(ansible\.cfg|pytest\.ini|requirements\.yml)$'; then
  echo "FAIL: the tarball ships development files (see build_ignore in galaxy.yml)" >&2
  exit 1
fi
ansible-galaxy collection install --offline --force -p "$work/installed" "$tarball" >/dev/null
export ANSIBLE_COLLECTIONS_PATH="$work/installed"
cd "$work"   # away from the checkout and its ansible.cfg

ansible-doc mlinfra.mlhost.host_facts | grep -q 'sysroot' || { echo "FAIL: ansible-doc shows no sysroot option" >&2; exit 1; }
ansible-doc -t role mlinfra.mlhost.ml_host | grep -q 'mlhost_gpu' || { echo "FAIL: ansible-doc shows no mlhost_gpu" >&2; exit 1; }
ansible-doc mlinfra.mlhost.miniforge | grep -q 'sha256' || { echo "FAIL: ansible-doc shows no miniforge sha256 option" >&2; exit 1; }
ansible-doc mlinfra.mlhost.conda_env | grep -q 'engine' || { echo "FAIL: ansible-doc shows no conda_env engine option" >&2; exit 1; }
ansible-doc -t role mlinfra.mlhost.miniforge | grep -q 'mlhost_conda_envs' || { echo "FAIL: ansible-doc shows no mlhost_conda_envs" >&2; exit 1; }
ansible-doc -t role mlinfra.mlhost.ml_host | grep -q 'mlhost_ca_certificates' || { echo "FAIL: ansible-doc shows no mlhost_ca_certificates" >&2; exit 1; }
ansible-doc mlinfra.mlhost.stack_check | grep -q 'fail_on_error' || { echo "FAIL: ansible-doc shows no stack_check fail_on_error" >&2; exit 1; }
ansible-doc -t filter mlinfra.mlhost.fleet_report | grep -q 'hostvars' || { echo "FAIL: ansible-doc shows no fleet_report filter" >&2; exit 1; }

run_facts() {
  ansible localhost -c local -e ansible_python_interpreter="$(command -v python3)" \
    -m mlinfra.mlhost.host_facts "$@" 2>/dev/null | sed -n '/=> {/,$p' | sed '1s/^.*=> //'
}

run_facts >"$work/live.json"
python3 - "$work/live.json" <<'PY'
import json, sys
facts = json.load(open(sys.argv[1]))["ansible_facts"]["mlhost"]
release = dict(l.split("=", 1) for l in open("/etc/os-release").read().splitlines() if "=" in l)
expect_id = release["ID"].strip('"')
assert facts["distro"]["id"] == expect_id, facts["distro"]
assert facts["distro"]["version"] == release.get("VERSION_ID", "").strip('"'), facts["distro"]
if expect_id == "debian":
    assert facts["pkg_mgr"] == "apt", facts["pkg_mgr"]
if not facts["nvidia"]["present"]:
    assert facts["gpus"] == [] and facts["reboot_required"] is False, facts
print(f"live: {facts['distro']['id']} {facts['distro']['version']}, {facts['pkg_mgr']}, gpus {facts['gpus']}, reboot_required {facts['reboot_required']}")
PY

fx="$REPO/tests/unit/fixtures"
tree="$work/rocky9"
dev="$tree/sys/bus/pci/devices/0000:17:00.0"
mkdir -p "$tree/etc" "$tree/proc/driver/nvidia" "$dev" "$tree/sys/bus/pci/drivers/nvidia"
cp "$fx/os-release/rocky9" "$tree/etc/os-release"
cp "$fx/proc/modules-nvidia" "$tree/proc/modules"
cp "$fx/proc/nvidia-version-550-rocky" "$tree/proc/driver/nvidia/version"
printf '0x10de\n' >"$dev/vendor"; printf '0x2330\n' >"$dev/device"; printf '0x030200\n' >"$dev/class"
ln -s ../../../../bus/pci/drivers/nvidia "$dev/driver"
sw="$tree/sys/bus/pci/devices/0000:05:00.0"  # an H100 NVSwitch (3rd generation): vendor 10de, class 0x0680
mkdir -p "$sw"
printf '0x10de\n' >"$sw/vendor"; printf '0x22a3\n' >"$sw/device"; printf '0x068000\n' >"$sw/class"
run_facts -a "sysroot=$tree" >"$work/rocky9.json"
python3 - "$work/rocky9.json" <<'PY'
import json, sys
facts = json.load(open(sys.argv[1]))["ansible_facts"]["mlhost"]
assert facts["distro"]["id"] == "rocky" and facts["pkg_mgr"] == "dnf", facts["distro"]
assert [g["name"] for g in facts["gpus"]] == ["NVIDIA H100 SXM5 80GB"], facts["gpus"]
assert facts["nvidia"]["loaded_version"] == "550.54.14", facts["nvidia"]
nv = facts["nvidia"]
assert (nv["platform"], nv["nvswitch_count"], nv["nvlink_generation"], nv["fabric_service"]) == ("sxm", 1, 4, "fabric_manager"), nv
assert facts["gpus"][0]["compute_capability"] == "9.0" == nv["min_compute_capability"], facts["gpus"]
print(f"rocky9 tree: {facts['distro']['id']} {facts['distro']['version']}, {facts['pkg_mgr']}, "
      f"{facts['gpus'][0]['name']}, loaded {facts['nvidia']['loaded_version']}, {nv['platform']}, "
      f"{nv['nvswitch_count']} NVSwitch, {nv['fabric_service']}")
PY

# The execution environment (ansible-builder) is checked by the galaxy stage (tests/galaxy/check.sh).
echo "package: ok"
