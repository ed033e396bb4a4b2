# SPDX-License-Identifier: GPL-3.0-or-later
"""Real dnf 4 (Debian's, in the test bed) against the STAND-IN NVIDIA tree of nvidia_standin_dnf_capture.sh:
nvidia_driver's dnf branch step (hold_dnf_branch) and the package layer run their commands for real, through a
subprocess runner in place of AnsibleModule. Not a RHEL host, not NVIDIA's repository, not the whole module.

It installs 580 from the 580-open stream and versionlocks it, changes to 590 (no stream: the enabled 580-open is reset,
590 is installed by its exact version), checks that dnf would upgrade nothing, that 610 is refused, then installs 590
the RHEL 10 way (the tree without module metadata: nvidia-open and the components it would pull from 595).

  # in the capture container, after nvidia_standin_dnf_capture.sh:
  mkdir -p /tmp/ac/ansible_collections/mlinfra/mlhost; copy plugins/ there and ansible's ansible/ package to /tmp/ac
  python3 tests/testbed/nvidia_standin_dnf_realrun.py     (prints REAL RUN PASSED)
"""
import shutil
import subprocess
import sys

sys.path.insert(0, "/tmp/ac")
from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_driver as nd, _packages
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import CommandResult
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError


class Runner:
    def __init__(self):
        self.calls = []

    def find(self, name, opt_dirs=None):
        return shutil.which(name)

    def run(self, argv, check=True, data=None, timeout=None, env=None, cwd=None):
        self.calls.append(argv)
        p = subprocess.run(argv, capture_output=True, text=True, check=False, env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        return CommandResult(p.returncode, p.stdout, p.stderr)


ROCKY9 = {"id": "rocky", "version": "9.4", "major": "9", "family": "redhat", "name": "Rocky Linux 9.4"}
ALMA10 = {"id": "almalinux", "version": "10.0", "major": "10", "family": "redhat", "name": "AlmaLinux 10.0"}
P = {"branch": "", "version": "", "hold": True, "source": "nvidia_repo"}


def layout(distro, flavor, branch):
    names, versioned, stream = nd.driver_packages(distro, "nvidia_repo", flavor, branch, "k")
    return nd.Layout("nvidia_repo", "real", flavor, branch, names, versioned, [], stream, None, False, {}, [])


def step(pm, runner, distro, flavor, branch, version=""):
    lay = layout(distro, flavor, branch)
    before = nd.installed_set(pm, lay.packages, holds=True)
    held = [n for n, (v, h) in before.items() if h]
    if held:
        pm.unhold(held)
    missing = [n for n in lay.packages if n not in before]
    warnings = []
    dummy, specs = nd.hold_dnf_branch(pm, lay, dict(P, branch=branch, version=version), distro, missing, list(lay.packages),
                                      False, warnings)
    names = [specs.get(n, n) for n in lay.packages] + [s for n, s in sorted(specs.items()) if n not in lay.packages]
    pm.install(names)
    after = nd.installed_set(pm, lay.packages, holds=True)
    lock = [n for n in nd.members(after, nd.driver_version_of(after), lay.packages) if not after[n][1]]
    pm.hold(lock)
    after = nd.installed_set(pm, lay.packages, holds=True)
    print(f"== {distro['name']} {flavor} {branch}: installed {' '.join(names)}")
    for w in warnings:
        print("   warning:", w)
    for n, (v, h) in sorted(after.items()):
        print(f"   {n} {v} {'held' if h else 'NOT HELD'}")
    return after


# The Debian container cannot tell dnf its release or platform: give them as a RHEL 9 host has them.
subprocess.run(["sh", "-c", "mkdir -p /etc/dnf/vars && echo 9 > /etc/dnf/vars/releasever && "
                "(grep -q module_platform_id /etc/dnf/dnf.conf || echo module_platform_id=platform:el9 >> /etc/dnf/dnf.conf) && "
                "dnf -q versionlock clear; dnf -y -q remove 'nvidia-*' 'kmod-nvidia*' >/dev/null 2>&1; "
                "dnf -y -q module reset nvidia-driver >/dev/null 2>&1; "
                "sed -i 's#file:///srv/repo10#file:///srv/repo#' /etc/yum.repos.d/standin.repo; dnf -q clean all; dnf -q makecache"],
               check=True)

runner = Runner()
pm = _packages.Dnf(runner)
after = step(pm, runner, ROCKY9, "open", "580")
assert all(v.startswith("3:580.") and h for v, h in after.values()), after
after = step(pm, runner, ROCKY9, "open", "590")
assert all(v.startswith("3:590.") and h for v, h in after.values()), after
up = runner.run(["dnf", "--assumeno", "upgrade"])
print("== dnf --assumeno upgrade after the 590 hold:", _packages.parse_dnf_transaction(up.out) or "nothing to upgrade")
assert not _packages.parse_dnf_transaction(up.out)
try:
    step(pm, runner, ROCKY9, "open", "610")
except ModuleError as exc:
    print("== branch 610 refused:", exc)
print("== dnf commands run:", len(runner.calls))
for c in runner.calls:
    print("   ", " ".join(c))
# The same packages from the tree without module metadata (RHEL 10's and Fedora's shape), as AlmaLinux 10 would.
runner.run(["dnf", "-q", "versionlock", "clear"])
runner.run(["dnf", "-y", "-q", "remove", "nvidia-driver", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"])
runner.run(["dnf", "-y", "-q", "module", "reset", "nvidia-driver"])
runner.run(["sed", "-i", "s#file:///srv/repo$#file:///srv/repo10#", "/etc/yum.repos.d/standin.repo"])
runner.run(["dnf", "-q", "clean", "all"])
runner.run(["dnf", "-q", "makecache"])
n = len(runner.calls)
after = step(pm, runner, ALMA10, "open", "590")
assert after and all(v.startswith("3:590.") and h for v, h in after.values()), after
assert not any("module" in c for c in runner.calls[n:])
up = runner.run(["dnf", "--assumeno", "upgrade"])
print("== AlmaLinux 10 shape, dnf --assumeno upgrade:", _packages.parse_dnf_transaction(up.out) or "nothing to upgrade")
for c in runner.calls[n:]:
    print("   ", " ".join(c))
print("REAL RUN PASSED")
