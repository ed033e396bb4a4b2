# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The benchmark harness of mlinfra.mlhost (run it through bench/run.sh, which makes its venvs).

What it measures, on real Debian 12 containers reached over real SSH (sshd on
loopback ports, network_mode host), with a local signed apt mirror and a local
wheelhouse so the network plays no part:

  first   first provision of a CPU ML host: playbooks/site.yml (ml_host) with
          the pip backend and with the uv backend, against bench/baseline.sh
          (the same apt-get / venv / pip steps, the way setup guides write
          them), each in its own fresh container, interleaved in every round;
  rerun   the idempotent rerun on those hosts: seconds, changed tasks, and the
          processes the host ran (BSD process accounting inside the container);
  fleet   first provision and rerun of 1, 2, 4, 8 hosts at once;
  fleet32 the idempotent rerun of 32 hosts (one provisioned host committed as an image, 32 containers of it)
          with forks 8, 16 and 32, interleaved (not in --smoke);
  facts   mlinfra.mlhost.host_facts against ansible.builtin.setup (min and all
          subsets), per call, interleaved on one provisioned host;
  env     uv against pip for the same lock from the wheelhouse (bench/python_env.sh);
  local   the README's main job on the host itself: inside a fresh bench host, a controller venv (ansible-core of
          requirements/site.txt, offline from wheels) and a copy of this tree, `ansible-playbook -c local
          playbooks/site.yml` with the default inventory (localhost, local connection): one first provision, then
          reruns interleaved with the floor (bench/ping.yml the same way) (not in --smoke).

Results go to bench/results/<UTC time>/: results.json (every run), summary.md
(medians, min, max, ratios) and fleet.png (bench/plot.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import importlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import typing as t
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MLHOST_TESTBED_CACHE", "/var/cache/mlhost-testbed")) / "bench"
BASE_IMAGE = "mlhost-testbed/debian12:latest"
PORT0 = 2350  # host i listens on 127.0.0.1:PORT0+i (the molecule scenarios use 2241-2244 and 2271-2283)
NAME = "mlbench-{:02d}"

# The CPU ML-host profile: build tools and one venv with a fixed small requirement set (a lock).
PROFILES = ["compilers", "cmake", "git", "download", "python_dev", "pkg_config"]
REQUIREMENTS = [
    "numpy==2.1.3", "requests==2.32.3", "urllib3==2.2.3", "idna==3.10", "certifi==2024.8.30",
    "charset-normalizer==3.4.0", "PyYAML==6.0.2", "six==1.17.0",
]
ENV_PATH = "/opt/mlhost/venvs/default"
IMAGE_PACKAGES = ["openssh-server", "acct"]  # in the image before the benchmark: sshd, and accounting to count
WHEELS = "/srv/mlbench-wheels"
MIRROR = "/srv/mlbench-apt"
KEYRING = "/usr/share/keyrings/mlbench-apt.gpg"

# The local part: the controller inside the bench host, as the README sets it up on a fresh Debian 12 machine.
LOCAL_ID = 5  # its container is mlbench-05 (sshd on PORT0+5, unused by the runs)
CTL_VENV = "/opt/mlbench-ctl"  # the controller venv: requirements/site.txt (scripts/site.sh's), offline from wheels
CTL_WHEELS = "/srv/mlbench-ctl-wheels"
CTL_SRC = "/root/mlhost"  # the copy of this tree (a clone, as the README has it)
CTL_WORK = "/root/mlbench"  # each run's variables, task times and log
CTL_PIP = "23.0.1"  # the pip that installs the venv, run from its wheel: Debian 12's (what python3-venv brings)
LOCAL_REPORT = "/root/mlbench-report"

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"]


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sh(argv: list[str], check: bool = True, **kw: t.Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, text=True, capture_output=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (rc {proc.returncode}): {(proc.stderr or proc.stdout)[-3000:]}")
    return proc


# ---------------------------------------------------------------- pure logic (unit-tested)

def summarize(values: list[float]) -> dict[str, float | int]:
    """Median, min, max and count of a list of seconds (or counts)."""
    if not values:
        return {"n": 0}
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def parse_dump_acct(text: str) -> dict[str, int]:
    """Count the processes in `dump-acct` output by command name (accton's own entries left out)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if "|" not in line:
            continue
        name = line.split("|", 1)[0].strip()
        if not name or name == "accton":
            continue
        counts[name] = counts.get(name, 0) + 1
    return counts


PACKAGE_QUERIES = ("dpkg-query", "rpm", "apt-cache", "dnf")


def package_queries(counts: dict[str, int]) -> int:
    """How many of the counted processes read the package state (dpkg-query, rpm, apt-cache, dnf)."""
    return sum(n for name, n in counts.items() if name in PACKAGE_QUERIES)


def recap_changed(times: dict[str, t.Any]) -> dict[str, int]:
    return {host: int(stats.get("changed", 0)) for host, stats in times.get("recap", {}).items()}


def tasks_run(times: dict[str, t.Any], host: str) -> int:
    """Tasks that ran on (or for) a host: every recorded result that was not skipped."""
    return sum(1 for rec in times.get("tasks", []) if rec["host"] == host and rec["status"] != "skipped")


def task_durations(times: dict[str, t.Any], prefix: str) -> list[float]:
    """Durations of the tasks whose name starts with prefix (one host)."""
    return [rec["end"] - rec["start"] for rec in times.get("tasks", []) if rec["task"].startswith(prefix)]


def slowest(times: dict[str, t.Any], host: str, n: int = 8) -> list[list[t.Any]]:
    """The n slowest tasks of a run for a host (name, seconds), slowest first."""
    recs = [rec for rec in times.get("tasks", []) if rec["host"] == host and rec["status"] != "skipped"]
    recs.sort(key=lambda rec: rec["start"] - rec["end"])
    return [[rec["task"], round(rec["end"] - rec["start"], 2)] for rec in recs[:n]]


def baseline_steps(stdout: str, seconds: float) -> dict[str, float]:
    """The baseline's steps from its `mlbench-mark NAME EPOCH` lines: apt (update + install), env (venv + pip
    install), and the rest of the wall time (SSH, the final import)."""
    marks = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "mlbench-mark":
            marks[parts[1]] = float(parts[2])
    if not {"apt", "env", "check"} <= set(marks):
        return {}
    apt, env = marks["env"] - marks["apt"], marks["check"] - marks["env"]
    return {"apt": round(apt, 2), "env": round(env, 2), "rest": round(seconds - apt - env, 2)}


STEP_TASKS = {"apt": "mlinfra.mlhost.build_tools : Install build tools",
              "env": "mlinfra.mlhost.python_env : Create or update the Python environments"}


def ours_steps(times: dict[str, t.Any], host: str, seconds: float) -> dict[str, float]:
    """The same split for an ml_host run: the build_tools install task, the python_env task, and the rest
    (Ansible's start-up, facts, validation, stack check, report)."""
    steps = {}
    for step, name in STEP_TASKS.items():
        steps[step] = round(sum(rec["end"] - rec["start"] for rec in times.get("tasks", [])
                                if rec["host"] == host and rec["task"] == name), 2)
    steps["rest"] = round(seconds - steps["apt"] - steps["env"], 2)
    return steps


CONTROLLER_ACTIONS = {"set_fact", "ansible.builtin.set_fact", "debug", "ansible.builtin.debug", "assert",
                      "ansible.builtin.assert", "validate_argument_spec", "ansible.builtin.validate_argument_spec",
                      "include_tasks", "ansible.builtin.include_tasks", "include_role", "ansible.builtin.include_role",
                      "import_role", "ansible.builtin.import_role", "meta", "ansible.builtin.meta", "fail",
                      "ansible.builtin.fail", "include_vars", "ansible.builtin.include_vars"}
REPORT_ACTIONS = {"mlinfra.mlhost.fleet_report_files"}


def rerun_split(times: dict[str, t.Any], host: str, seconds: float) -> dict[str, float]:
    """Where one host's run went: module runs on the host, the report (on the controller), controller-only
    tasks (set_fact, assert, debug, includes, argument specs), the scheduling between tasks (first task's start
    to the last one's end, less the tasks), and the start-up and end (wall time outside the tasks)."""
    recs = [rec for rec in times.get("tasks", []) if rec["host"] == host and rec["status"] != "skipped"]
    if not recs:
        return {}
    split = {"modules": 0.0, "report": 0.0, "controller_only": 0.0}
    counts = {"modules": 0, "report": 0, "controller_only": 0}
    for rec in recs:
        kind = ("report" if rec.get("action") in REPORT_ACTIONS else
                "controller_only" if rec.get("action") in CONTROLLER_ACTIONS else "modules")
        split[kind] += rec["end"] - rec["start"]
        counts[kind] += 1
    span = max(rec["end"] for rec in recs) - min(rec["start"] for rec in recs)
    split["scheduling"] = span - sum(split.values())
    split["startup_and_end"] = seconds - span
    out = {k: round(v, 2) for k, v in split.items()}
    out.update({f"{k}_tasks": v for k, v in counts.items()})
    return out


def task_spans(times: dict[str, t.Any], n: int = 8) -> list[list[t.Any]]:
    """For a run over many hosts: each task's span (its first host's start to its last host's end; the linear
    strategy waits for every host before the next task), the n longest, longest first. A task name met again
    by a host (the same task file in the next play) is the next occurrence, counted apart ("name #2")."""
    spans: dict[tuple[str, int], list[float]] = {}
    seen: dict[tuple[str, str], int] = {}
    for rec in times.get("tasks", []):
        k = seen[(rec["host"], rec["task"])] = seen.get((rec["host"], rec["task"]), 0) + 1
        if rec["status"] == "skipped":
            continue
        lo_hi = spans.setdefault((rec["task"], k), [rec["start"], rec["end"]])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], rec["start"]), max(lo_hi[1], rec["end"])
    ranked = sorted(spans.items(), key=lambda kv: kv[1][0] - kv[1][1])
    return [[name if k == 1 else f"{name} #{k}", round(hi - lo, 2)] for (name, k), (lo, hi) in ranked[:n]]


def run_tasks(times: dict[str, t.Any]) -> dict[str, int]:
    """Task results of a run over all hosts: how many ran and how many were skipped (each costs the controller)."""
    recs = times.get("tasks", [])
    return {"ran": sum(1 for r in recs if r["status"] != "skipped"), "skipped": sum(1 for r in recs if r["status"] == "skipped")}


def rotate(items: list[str], k: int) -> list[str]:
    k %= len(items)
    return items[k:] + items[:k]


def rerun_record(round_: int, run: dict[str, t.Any], host: str, procs: dict[str, int]) -> dict[str, t.Any]:
    """What results.json keeps of one timed rerun of one host: time, changes (None when the recap lacks the host,
    which check() fails like a change), tasks, the host's processes by command and the callback's split."""
    return {
        "round": round_, "seconds": run["seconds"], "changed": recap_changed(run["times"]).get(host),
        "tasks_run": tasks_run(run["times"], host), "processes": sum(procs.values()),
        "package_queries": package_queries(procs), "by_command": procs,
        "slowest": slowest(run["times"], host),
        "split": rerun_split(run["times"], host, run["seconds"]),
    }


def pair_ratios(num: list[float], den: list[float]) -> list[float]:
    """Run-by-run ratios of two interleaved series (the k-th rerun over the k-th floor)."""
    return [round(a / b, 3) for a, b in zip(num, den) if b]


def split_summary(splits: list[dict[str, float]]) -> dict[str, dict[str, float | int]]:
    """Median, min and max of each part of a series of rerun_split results (the parts of the first one)."""
    splits = [sp for sp in splits if sp]
    return {k: summarize([sp[k] for sp in splits]) for k in (splits[0] if splits else {})}


def controller_requirements(text: str) -> list[str]:
    """The pins of a requirements file (comments and blank lines left out)."""
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def local_command(playbook: str, extra: str, times_file: str, log_file: str) -> str:
    """The shell line that runs one local-connection playbook inside the bench host the README's way (from the
    copy of the tree, its ansible.cfg and default inventory: localhost over the local connection) and prints
    `mlbench-time RC START END`, the wall time measured inside the container (no docker exec in it)."""
    env = {"ANSIBLE_CALLBACK_PLUGINS": f"{CTL_SRC}/bench/callback_plugins", "ANSIBLE_CALLBACKS_ENABLED": "mlbench_times",
           "MLBENCH_TIMES_FILE": times_file, "ANSIBLE_FORCE_COLOR": "0",
           # what scripts/site.sh sets (ansible.cfg names the same)
           "ANSIBLE_STDOUT_CALLBACK": "mlinfra.mlhost.default"}
    argv = [f"{CTL_VENV}/bin/ansible-playbook", "-c", "local", "-e", f"@{extra}", playbook]
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (f"cd {CTL_SRC} && t0=$(date +%s.%N) && {assigns} {shlex.join(argv)} >{shlex.quote(log_file)} 2>&1; "
            "rc=$?; t1=$(date +%s.%N); echo mlbench-time $rc $t0 $t1")


def parse_timed(stdout: str) -> tuple[int, float]:
    """The exit status and wall seconds from local_command's `mlbench-time RC START END` line."""
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "mlbench-time":
            return int(parts[1]), round(float(parts[3]) - float(parts[2]), 3)
    raise RuntimeError(f"no mlbench-time line in: {stdout[-500:]!r}")


def _module_utils(name: str) -> t.Any:
    """One of the collection's module_utils, imported through the link scripts/lib.sh makes."""
    sys.path.insert(0, str(REPO / ".build" / "collections"))
    return importlib.import_module(f"ansible_collections.mlinfra.mlhost.plugins.module_utils.{name}")


def profile_packages() -> list[str]:
    """The Debian 12 package names of PROFILES, from the collection's own table."""
    return _module_utils("_build_profiles").resolve(PROFILES, {"id": "debian", "major": "12", "version": "12"}, None)


def tool_requirements() -> list[str]:
    """What python_env puts into its own tool venv (uv, packaging): the wheelhouse must have them."""
    venv = _module_utils("_venv")
    return [f"uv=={venv.TOOL_UV_VERSION}", f"packaging=={venv.TOOL_PACKAGING_VERSION}"]


def host_vars(backend: str, report_dir: Path) -> dict[str, t.Any]:
    """The extra vars of the CPU ML-host profile (every host of a run gets them)."""
    return {
        "mlhost_gpu": False,
        "mlhost_build_tools_profiles": PROFILES,
        "mlhost_python_envs": [{
            "path": ENV_PATH,
            "packages": REQUIREMENTS,
            "backend": backend,
            "offline": True,
            "find_links": WHEELS,
            "lock_file": ENV_PATH + ".lock",
        }],
        "mlhost_report_dir": str(report_dir),
    }


def inventory(hosts: list[int], key: Path) -> dict[str, t.Any]:
    return {"all": {
        "hosts": {NAME.format(i): {"ansible_host": "127.0.0.1", "ansible_port": PORT0 + i} for i in hosts},
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": " ".join(SSH_OPTS),
        },
    }}


def release_file(files: dict[str, bytes], now: dt.datetime) -> str:
    """A flat apt repository's Release with SHA256 sums of its index files."""
    lines = [
        "Origin: mlhost-bench",
        "Label: mlhost-bench local mirror",
        "Date: " + now.strftime("%a, %d %b %Y %H:%M:%S UTC"),
        "SHA256:",
    ]
    for name, data in sorted(files.items()):
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the test bed: image, mirror, wheelhouse

IMAGE_SCRIPT = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Up to date, as a fresh cloud image is: apt-get install of an installed package upgrades it, which would give
# the baseline (which names ca-certificates) work that ml_host (which installs only what is missing) skips.
apt-get dist-upgrade -y -qq >/dev/null
apt-get install -y -qq --no-install-recommends $IMAGE_PACKAGES >/dev/null
# The mirror's packages: what the profile installs on exactly this image, downloaded once.
mkdir -p /srv/debs/partial
apt-get install -y -qq -d --no-install-recommends -o Dir::Cache::Archives=/srv/debs/ $MIRROR_PACKAGES >/dev/null
systemctl disable ssh.service >/dev/null 2>&1
install -d -m 0700 /root/.ssh
printf '%s\n' "$PUBKEY" >/root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
printf 'ListenAddress 127.0.0.1\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n' \
  >/etc/ssh/sshd_config.d/mlbench.conf
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
printf 'deb [signed-by=%s] file:%s ./\n' "$KEYRING" "$MIRROR" >/etc/apt/sources.list.d/mlbench.list
apt-get clean
rm -rf /var/lib/apt/lists/*
"""


class Testbed:
    def __init__(self) -> None:
        self.key = CACHE / "ssh" / "id_ed25519"
        self.gnupg = CACHE / "gnupg"
        self.keyring = CACHE / "mlbench-apt.gpg"
        self.wheels = CACHE / "wheelhouse"
        self.tag = ""
        self.mirror = Path()

    def prepare(self) -> None:
        subprocess.run(["bash", str(REPO / "tests" / "testbed" / "testbed.sh"), "all"], check=True)
        self._key()
        self._signing_key()
        self._image()
        self._wheelhouse()

    def _key(self) -> None:
        if not self.key.exists():
            self.key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mlhost-bench", "-f", str(self.key)])

    def _gpg(self, *args: str) -> subprocess.CompletedProcess:
        return sh(["gpg", "--homedir", str(self.gnupg), "--batch", "--yes", *args])

    def _signing_key(self) -> None:
        if self.keyring.exists():
            return
        self.gnupg.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._gpg("--passphrase", "", "--quick-gen-key", "mlhost bench mirror <bench@mlhost.invalid>",
                  "ed25519", "sign", "never")
        exported = subprocess.run(["gpg", "--homedir", str(self.gnupg), "--batch", "--export"],
                                  capture_output=True, check=True).stdout
        self.keyring.write_bytes(exported)

    def _image(self) -> None:
        base = sh(["docker", "image", "inspect", "-f", "{{.Id}}", BASE_IMAGE]).stdout.strip()
        packages = " ".join(profile_packages())
        recipe = "\n".join([IMAGE_SCRIPT, base, " ".join(IMAGE_PACKAGES), packages,
                            self.key.with_suffix(".pub").read_text(), hashlib.sha256(self.keyring.read_bytes()).hexdigest()])
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
        self.tag = f"mlhost-bench/debian12:{digest}"
        self.mirror = CACHE / f"mirror-{digest}"
        if sh(["docker", "image", "inspect", self.tag], check=False).returncode == 0 and (self.mirror / "InRelease").exists():
            log(f"image {self.tag} and its mirror are present, reused")
            return
        log(f"building {self.tag} (sshd, acct, the mirror's packages)")
        t0 = time.monotonic()
        debs = CACHE / f"debs-{digest}"
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        builder = "mlbench-build"
        sh(["docker", "rm", "-f", builder], check=False)
        sh(["docker", "run", "-d", "--name", builder, "--network", "host", "-v", f"{debs}:/srv/debs", BASE_IMAGE,
            "sleep", "infinity"])
        try:
            sh(["docker", "cp", str(self.keyring), f"{builder}:{KEYRING}"])
            sh(["docker", "exec", "-e", f"IMAGE_PACKAGES={' '.join(IMAGE_PACKAGES)}", "-e", f"MIRROR_PACKAGES={packages}",
                "-e", f"PUBKEY={self.key.with_suffix('.pub').read_text().strip()}", "-e", f"KEYRING={KEYRING}",
                "-e", f"MIRROR={MIRROR}", builder, "sh", "-c", IMAGE_SCRIPT])
            sh(["docker", "exec", builder, "chmod", "0644", KEYRING])
            sh(["docker", "commit", "--change", 'CMD ["/lib/systemd/systemd"]', builder, self.tag])
        finally:
            sh(["docker", "rm", "-f", builder], check=False)
        self._build_mirror(debs)
        shutil.rmtree(debs, ignore_errors=True)
        log(f"built {self.tag} and {self.mirror} in {time.monotonic() - t0:.0f} s")

    def _build_mirror(self, debs: Path) -> None:
        """A flat apt repository of the downloaded packages: Packages, Release, InRelease signed by the bench key."""
        shutil.rmtree(self.mirror, ignore_errors=True)
        self.mirror.mkdir(parents=True)
        for deb in sorted(debs.glob("*.deb")):
            shutil.copy2(deb, self.mirror / deb.name)
        packages = sh(["dpkg-scanpackages", "--multiversion", "."], cwd=self.mirror).stdout.encode()
        if not packages.strip():
            raise RuntimeError(f"no packages were downloaded for the mirror into {debs}")
        files = {"Packages": packages, "Packages.gz": gzip.compress(packages, mtime=0)}
        for name, data in files.items():
            (self.mirror / name).write_bytes(data)
        (self.mirror / "Release").write_text(release_file(files, dt.datetime.now(dt.timezone.utc)))
        self._gpg("--clearsign", "-o", str(self.mirror / "InRelease"), str(self.mirror / "Release"))
        for path in [self.mirror, *self.mirror.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    def _wheelhouse(self) -> None:
        self._download(self.wheels, REQUIREMENTS + tool_requirements(), "the wheelhouse")

    def controller_wheelhouse(self) -> Path:
        """The local part's controller as wheels for the hosts' Python: requirements/site.txt and the pip that
        installs them (downloaded once, reused while the pins are unchanged)."""
        wheels = CACHE / "controller-wheelhouse"
        reqs = controller_requirements((REPO / "requirements" / "site.txt").read_text())
        self._download(wheels, [*reqs, f"pip=={CTL_PIP}"], "the controller's wheels (requirements/site.txt)")
        return wheels

    def _download(self, wheels: Path, wanted: list[str], what: str) -> None:
        stamp = wheels / ".mlbench-stamp"
        if stamp.exists() and stamp.read_text() == "\n".join(wanted):
            return
        log(f"downloading {what}")
        shutil.rmtree(wheels, ignore_errors=True)
        dl = CACHE / "pip-download"
        if not (dl / "bin" / "pip").exists():
            sh([sys.executable, "-m", "venv", str(dl)])
        env = dict(os.environ, PIP_CONFIG_FILE="/dev/null")
        cert = ["--cert", "/etc/ssl/certs/ca-certificates.crt"] if Path("/etc/ssl/certs/ca-certificates.crt").exists() else []
        # The hosts run Debian 12's Python 3.11: wheels for it, whatever Python runs the harness.
        sh([str(dl / "bin" / "pip"), "download", "-q", "--disable-pip-version-check", *cert, "--only-binary=:all:",
            "--python-version", "3.11", "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
            "--platform", "manylinux_2_28_x86_64", "--platform", "any",
            "-d", str(wheels), *wanted], env=env)
        for path in [wheels, *wheels.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        stamp.write_text("\n".join(wanted))


# ---------------------------------------------------------------- hosts

class Hosts:
    """Fresh bench containers, each with systemd, sshd on its own loopback port, and process accounting."""

    def __init__(self, bed: Testbed, out: Path) -> None:
        self.bed = bed
        self.out = out
        self.seq = 0

    def start(self, ids: list[int], image: str = "", mounts: t.Sequence[tuple[Path, str]] = ()) -> None:
        """Start the hosts; mounts: more (directory, path in the container) pairs, read-only."""
        extra = [arg for src, dst in mounts for arg in ("-v", f"{src}:{dst}:ro")]
        for i in ids:
            name = NAME.format(i)
            sh(["docker", "rm", "-f", name], check=False)
            sh(["docker", "run", "-d", "--name", name, "--hostname", name, "--network", "host", "--cgroupns", "host",
                "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp:exec",
                "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
                "-v", f"{self.bed.mirror}:{MIRROR}:ro", "-v", f"{self.bed.wheels}:{WHEELS}:ro", *extra,
                "--cap-add", "SYS_PACCT", "--stop-signal", "SIGRTMIN+3", image or self.bed.tag])
        for i in ids:
            name = NAME.format(i)
            for _attempt in range(120):
                state = sh(["docker", "exec", name, "systemctl", "is-system-running"], check=False).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"{name}: systemd did not finish booting ({state})")
            sh(["docker", "exec", name, "sh", "-c",
                f"echo 'Port {PORT0 + i}' >/etc/ssh/sshd_config.d/port.conf && systemctl start ssh"])
        for i in ids:
            for _attempt in range(60):
                if self.ssh(i, ["true"], check=False).returncode == 0:
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"{NAME.format(i)}: sshd on port {PORT0 + i} did not answer")

    def remove(self, ids: list[int]) -> None:
        for i in ids:
            sh(["docker", "rm", "-f", NAME.format(i)], check=False)

    def ssh(self, i: int, argv: list[str], check: bool = True, **kw: t.Any) -> subprocess.CompletedProcess:
        return sh(["ssh", *SSH_OPTS, "-i", str(self.bed.key), "-p", str(PORT0 + i), "root@127.0.0.1", *argv],
                  check=check, **kw)

    def acct_on(self, ids: list[int], label: str) -> None:
        for i in ids:
            # Two calls, so that no process but accton itself (left out when counting) is in the file.
            sh(["docker", "exec", NAME.format(i), "sh", "-c", f"mkdir -p /var/log/mlbench && : >/var/log/mlbench/{label}"])
            sh(["docker", "exec", NAME.format(i), "accton", f"/var/log/mlbench/{label}"])

    def acct_off(self, ids: list[int], label: str) -> dict[int, dict[str, int]]:
        """Stop accounting; the processes each host ran, by command (the raw dump is kept under acct/)."""
        counts = {}
        (self.out / "acct").mkdir(exist_ok=True)
        for i in ids:
            sh(["docker", "exec", NAME.format(i), "accton", "off"])
            out = sh(["docker", "exec", NAME.format(i), "dump-acct", f"/var/log/mlbench/{label}"]).stdout
            self.seq += 1
            (self.out / "acct" / f"{self.seq:03d}-{NAME.format(i)}-{label}.txt").write_text(out)
            counts[i] = parse_dump_acct(out)
        return counts


# ---------------------------------------------------------------- runs

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.out = Path(args.out) if args.out else REPO / "bench" / "results" / (stamp + ("-smoke" if args.smoke else ""))
        self.out.mkdir(parents=True, exist_ok=True)
        self.bed = Testbed()
        self.hosts = Hosts(self.bed, self.out)
        self.venv = Path(os.environ.get("VENV", REPO / ".venv" / "test"))
        self.results: dict[str, t.Any] = {"machine": machine(), "started": stamp, "smoke": args.smoke,
                                          "requirements": REQUIREMENTS, "profiles": PROFILES}
        self.seq = 0

    @staticmethod
    def settle() -> None:
        """Before every timed run: write back what earlier runs left dirty (dpkg writes hundreds of MB), so
        that no run pays for the one before it."""
        t0 = time.monotonic()
        os.sync()
        if time.monotonic() - t0 > 5:
            log(f"sync took {time.monotonic() - t0:.1f} s")

    def playbook(self, ids: list[int], backend: str, label: str, report: str = "",
                 playbook: Path | None = None, forks: int = 0, mitogen: bool = False,
                 collections: str = "") -> dict[str, t.Any]:
        """Run a playbook (site.yml by default) against hosts; wall seconds and the recorder's data.
        A rerun names the report directory of its first run: the report is then rewritten only if it changed."""
        self.seq += 1
        tag = f"{self.seq:03d}-{label}"
        inv = self.out / "runs" / f"{tag}.inventory.json"
        inv.parent.mkdir(exist_ok=True)
        inv.write_text(json.dumps(inventory(ids, self.bed.key)))
        extra = self.out / "runs" / f"{tag}.vars.json"
        extra.write_text(json.dumps(host_vars(backend, self.out / "reports" / (report or tag))))
        times_file = self.out / "runs" / f"{tag}.times.json"
        env = dict(os.environ,
                   ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="mlbench_times",
                   MLBENCH_TIMES_FILE=str(times_file),
                   ANSIBLE_PIPELINING="True",
                   ANSIBLE_FORKS=str(forks or max(5, len(ids))),
                   ANSIBLE_HOST_KEY_CHECKING="False",
                   ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_COLLECTIONS_PATH=collections or str(REPO / ".build" / "collections"))
        if mitogen:
            # Mitogen's strategy (issue 20, item 3): --mitogen names a directory holding its ansible_mitogen package.
            env["ANSIBLE_STRATEGY_PLUGINS"] = str(Path(self.args.mitogen) / "ansible_mitogen" / "plugins" / "strategy")
            env["ANSIBLE_STRATEGY"] = "mitogen_linear"
        cmd = [str(self.venv / "bin" / "ansible-playbook"), "-i", str(inv), "-e", f"@{extra}",
               str(playbook or REPO / "playbooks" / "site.yml")]
        self.settle()
        with open(self.out / "runs" / f"{tag}.log", "w", encoding="utf-8") as logf:
            t0 = time.monotonic()
            proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT, check=False)
            seconds = time.monotonic() - t0
        if proc.returncode != 0:
            tail = (self.out / "runs" / f"{tag}.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{label}: ansible-playbook failed (rc {proc.returncode}); log {tag}.log:\n{tail}")
        times = json.loads(times_file.read_text())
        return {"seconds": round(seconds, 3), "times": times, "log": f"runs/{tag}.log"}

    def compare_kw(self, who: str) -> dict[str, t.Any]:
        """The -compare contender runs the other copy's own site.yml through its collections path."""
        if not who.endswith("-compare"):
            return {}
        return {"collections": self.args.compare,
                "playbook": Path(self.args.compare) / "ansible_collections" / "mlinfra" / "mlhost" / "playbooks" / "site.yml"}

    def baseline(self, i: int) -> tuple[float, dict[str, float]]:
        """Run bench/baseline.sh on host i over SSH: its wall seconds and its steps' seconds."""
        self.settle()
        t0 = time.monotonic()
        with open(REPO / "bench" / "baseline.sh", encoding="utf-8") as script:
            proc = self.hosts.ssh(i, ["bash", "-s", "--", *REQUIREMENTS], check=False, stdin=script)
        seconds = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"baseline failed (rc {proc.returncode}): {(proc.stderr or proc.stdout)[-3000:]}")
        return round(seconds, 3), baseline_steps(proc.stdout, seconds)

    # ---- first provision and rerun
    def first_and_rerun(self) -> None:
        rounds, reruns = self.args.rounds, self.args.reruns
        first: dict[str, list[dict]] = {"baseline": [], "ours-pip": [], "ours-uv": []}
        rerun: dict[str, list[dict]] = {"ours-pip": [], "ours-uv": []}
        if self.args.mitogen:
            rerun["ours-uv-mitogen"] = []
        if self.args.compare:
            rerun["ours-uv-compare"] = []  # the same host rerun by another copy of the collection (before/after)
        dropped: dict[str, str] = {}
        floor: list[float] = []
        ids = {"baseline": 1, "ours-pip": 2, "ours-uv": 3}
        for r in range(rounds):
            self.hosts.start(list(ids.values()))
            try:
                for who in rotate(list(ids), r):
                    i = ids[who]
                    self.hosts.acct_on([i], "first")
                    if who == "baseline":
                        (seconds, steps), changed, top = self.baseline(i), None, []
                    else:
                        run = self.playbook([i], who.split("-")[1], f"first-{who}", report=f"{who}-{r}")
                        seconds, changed = run["seconds"], recap_changed(run["times"])[NAME.format(i)]
                        top = slowest(run["times"], NAME.format(i))
                        steps = ours_steps(run["times"], NAME.format(i), seconds)
                    procs = self.hosts.acct_off([i], "first")[i]
                    first[who].append({"round": r, "seconds": seconds, "changed": changed,
                                       "processes": sum(procs.values()), "package_queries": package_queries(procs),
                                       "by_command": procs, "slowest": top, "steps": steps})
                    log(f"round {r + 1}/{rounds} first provision {who}: {seconds:.1f} s")
                for k in range(reruns):
                    for who in rotate(list(rerun), r + k):
                        if who in dropped:
                            continue
                        base = "ours-uv" if who.startswith("ours-uv-") else who
                        i = ids[base]
                        self.hosts.acct_on([i], "rerun")
                        try:
                            run = self.playbook([i], base.split("-")[1], f"rerun-{who}", report=f"{base}-{r}",
                                                mitogen=who.endswith("-mitogen"), **self.compare_kw(who))
                        except RuntimeError as exc:
                            if base == who:
                                raise
                            # A contender beside the stock run (mitogen, another copy) that fails is recorded, not fatal.
                            dropped[who] = str(exc)[-1500:]
                            self.hosts.acct_off([i], "rerun")
                            log(f"rerun {who} failed, left out from now on: {str(exc)[-500:]}")
                            continue
                        procs = self.hosts.acct_off([i], "rerun")[i]
                        host = NAME.format(i)
                        rerun[who].append(rerun_record(r, run, host, procs))
                        log(f"round {r + 1}/{rounds} rerun {who}: {run['seconds']:.1f} s, "
                            f"changed={rerun[who][-1]['changed']}, {sum(procs.values())} processes")
                    # Ansible's own floor beside it: ansible-playbook with one ping task, same host, same settings.
                    ping = self.playbook([ids["ours-uv"]], "uv", "floor-ping", playbook=REPO / "bench" / "ping.yml")
                    floor.append(ping["seconds"])
                if r == rounds - 1 and "facts" in self.args.only:
                    self.facts(ids["ours-uv"])
            finally:
                if not self.args.keep:
                    self.hosts.remove(list(ids.values()))
        ratios = {}
        for who in ("ours-pip", "ours-uv"):
            per_round = [a["seconds"] / b["seconds"] for a, b in zip(first[who], first["baseline"])]
            ratios[who] = summarize(per_round)
        self.results["first"] = {"runs": first, "summary": {k: summarize([x["seconds"] for x in v]) for k, v in first.items()},
                                 "ratio_to_baseline": ratios}
        summary = {k: summarize([x["seconds"] for x in v]) for k, v in rerun.items()}
        summary["ansible-floor (one ping task)"] = summarize(floor)
        self.results["rerun"] = {"runs": rerun, "floor": floor, "summary": summary, "dropped": dropped}

    # ---- fleet scaling
    def fleet(self) -> None:
        sizes = self.args.sizes
        runs: dict[str, dict[str, list[float]]] = {str(n): {"first": [], "rerun": [], "rerun_changed": []} for n in sizes}
        for r in range(self.args.rounds):
            for n in rotate(sizes, r):
                ids = list(range(11, 11 + n))
                self.hosts.start(ids)
                try:
                    first = self.playbook(ids, "uv", f"fleet{n}-first", report=f"fleet{n}-{r}")
                    again = self.playbook(ids, "uv", f"fleet{n}-rerun", report=f"fleet{n}-{r}")
                finally:
                    if not self.args.keep:
                        self.hosts.remove(ids)
                runs[str(n)]["first"].append(first["seconds"])
                runs[str(n)]["rerun"].append(again["seconds"])
                runs[str(n)]["rerun_changed"].append(sum(recap_changed(again["times"]).values()))
                log(f"round {r + 1}/{self.args.rounds} fleet of {n}: first {first['seconds']:.1f} s, "
                    f"rerun {again['seconds']:.1f} s")
        self.results["fleet"] = {
            "runs": runs,
            "summary": {n: {"first": summarize(v["first"]), "rerun": summarize(v["rerun"]),
                            "rerun_changed": max(v["rerun_changed"])} for n, v in runs.items()},
        }

    # ---- 32-host rerun (issue 20, item 4)
    def fleet32(self) -> None:
        """One host provisioned, committed as an image, N containers of it; the idempotent rerun of all N with
        each of the forks settings, interleaved over rounds. A first, untimed rerun writes the fleet report for
        the N hosts (a new host is a change to the report); every timed rerun must then change nothing."""
        n, forks_list, rounds = self.args.fleet32_hosts, self.args.fleet32_forks, self.args.fleet32_rounds
        seed, ids = 50, list(range(51, 51 + n))
        image = f"mlhost-bench/fleet32:{self.bed.tag.split(':', 1)[1]}"
        self.hosts.start([seed])
        try:
            first = self.playbook([seed], "uv", "fleet32-seed-first", report="fleet32-seed")
            sh(["docker", "exec", NAME.format(seed), "sh", "-c", "rm -f /etc/ssh/sshd_config.d/port.conf; sync"])
            sh(["docker", "commit", NAME.format(seed), image])
        finally:
            if not self.args.keep:
                self.hosts.remove([seed])
        runs: dict[str, list[dict]] = {str(f): [] for f in forks_list}
        raise_inotify_instances(n)
        try:
            t0 = time.monotonic()
            self.hosts.start(ids, image=image)
            boot = time.monotonic() - t0
            mem = _meminfo_used_mib()
            log(f"fleet32: {n} hosts up in {boot:.0f} s, {mem} MiB used")
            warm = self.playbook(ids, "uv", f"fleet{n}-warm-up", report=f"fleet{n}", forks=max(forks_list))
            for r in range(rounds):
                for forks in rotate(forks_list, r):
                    run = self.playbook(ids, "uv", f"fleet{n}-rerun-forks{forks}", report=f"fleet{n}", forks=forks)
                    changed = recap_changed(run["times"])
                    runs[str(forks)].append({
                        "round": r, "seconds": run["seconds"], "changed": sum(changed.values()),
                        "hosts_in_recap": len([h for h in changed if h != "localhost"]), "load": os.getloadavg()[0],
                        "longest_tasks": task_spans(run["times"]), "task_results": run_tasks(run["times"]),
                    })
                    log(f"round {r + 1}/{rounds} {n} hosts forks {forks}: {run['seconds']:.1f} s, "
                        f"changed={sum(changed.values())}")
        finally:
            if not self.args.keep:
                self.hosts.remove(ids)
            sh(["docker", "rmi", image], check=False)
        self.results["fleet32"] = {
            "hosts": n, "boot_seconds": round(boot, 1), "memory_used_mib": mem, "seed_first": first["seconds"],
            "warm_up": warm["seconds"], "warm_up_changed": sum(recap_changed(warm["times"]).values()), "runs": runs,
            "summary": {f: {"rerun": summarize([x["seconds"] for x in v]),
                            "per_host": round(statistics.median([x["seconds"] for x in v]) / n, 3),
                            "changed": max(x["changed"] for x in v),
                            "hosts_in_recap": min(x["hosts_in_recap"] for x in v)} for f, v in runs.items() if v},
        }

    # ---- facts
    def facts(self, i: int) -> None:
        calls = self.args.facts_calls
        book = self.out / "facts-playbook.json"
        tasks = []
        modules = {"host_facts": ("mlinfra.mlhost.host_facts", {}),
                   "setup_min": ("ansible.builtin.setup", {"gather_subset": ["min"]}),
                   "setup_all": ("ansible.builtin.setup", {"gather_subset": ["all"]})}
        # A first round warms the connection; its names ("warm-up ...") keep it out of the figures.
        for k in range(calls + 1):
            tasks += [{"name": f"{what} {k}" if k else f"warm-up {what}", action: args}
                      for what, (action, args) in modules.items()]
        book.write_text(json.dumps([{"name": "Facts, per call", "hosts": "all", "gather_facts": False,
                                     "tasks": tasks}], indent=1))
        run = self.playbook([i], "uv", "facts", playbook=book)
        per = {what: summarize(task_durations(run["times"], what + " ")) for what in modules}
        self.results["facts"] = {"calls": calls, "summary": per,
                                 "ratio_host_facts_to_setup_all": round(per["host_facts"]["median"] / per["setup_all"]["median"], 3)}
        log(f"facts per call: {json.dumps(per)}")

    # ---- facts on the controller machine itself: whole ad-hoc calls, local connection
    def facts_local(self) -> None:
        """`ansible localhost -m host_facts` against `-m setup` (min, all), whole wall time, interleaved over
        rounds, on the machine the harness runs on (a workstation here: pyenv shims, a CUDA toolkit, no GPU).
        The interpreter is the controller's own, as a local play's usually is."""
        rounds = self.args.facts_calls
        calls = {"host_facts": ["-m", "mlinfra.mlhost.host_facts"],
                 "setup_min": ["-m", "ansible.builtin.setup", "-a", "gather_subset=min"],
                 "setup_all": ["-m", "ansible.builtin.setup"]}
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"), ANSIBLE_FORCE_COLOR="0")
        times: dict[str, list[float]] = {k: [] for k in calls}
        for r in range(rounds + 1):  # round 0 warms the caches and is left out
            for what in rotate(list(calls), r):
                cmd = [str(self.venv / "bin" / "ansible"), "localhost", "-c", "local", "-i", "localhost,",
                       "-e", f"ansible_python_interpreter={self.venv / 'bin' / 'python'}", *calls[what]]
                t0 = time.monotonic()
                proc = subprocess.run(cmd, cwd=REPO, env=env, text=True, capture_output=True, check=False)
                seconds = time.monotonic() - t0
                if proc.returncode != 0:
                    raise RuntimeError(f"facts_local {what} failed (rc {proc.returncode}): {proc.stdout[-2000:]}")
                if r:
                    times[what].append(round(seconds, 3))
        per = {k: summarize(v) for k, v in times.items()}
        self.results["facts_local"] = {"rounds": rounds, "summary": per, "runs": times,
                                       "ratio_host_facts_to_setup_min":
                                       round(per["host_facts"]["median"] / per["setup_min"]["median"], 3)}
        log(f"facts_local: {json.dumps(per)}")

    # ---- the main job on the host itself, local connection (the README's way), inside a bench host
    def local(self) -> None:
        """In a fresh bench host: the controller installed there (a venv of requirements/site.txt, offline from
        wheels, and a copy of this tree with its ansible.cfg and default inventory), one first provision with
        `ansible-playbook -c local playbooks/site.yml`, then N reruns interleaved with Ansible's floor there
        (bench/ping.yml, the same command). Every rerun must change nothing."""
        i, reruns = LOCAL_ID, self.args.reruns
        name = NAME.format(i)
        wheels = self.bed.controller_wheelhouse()
        self.hosts.start([i], mounts=[(wheels, CTL_WHEELS)])
        runs: dict[str, list[dict]] = {"rerun": [], "floor": []}
        try:
            controller = self.install_controller(name)
            log(f"local: controller in {name}: {controller['python']}, {controller['ansible']} "
                f"(installed in {controller['install_seconds']:.1f} s)")
            self.hosts.acct_on([i], "local-first")
            first = self.local_playbook(name, "playbooks/site.yml", "local-first")
            procs = self.hosts.acct_off([i], "local-first")[i]
            first_rec = {"seconds": first["seconds"], "changed": recap_changed(first["times"]).get("localhost"),
                         "tasks_run": tasks_run(first["times"], "localhost"), "processes": sum(procs.values()),
                         "slowest": slowest(first["times"], "localhost"),
                         "steps": ours_steps(first["times"], "localhost", first["seconds"])}
            log(f"local: first provision {first['seconds']:.1f} s, changed={first_rec['changed']}")
            books = {"rerun": "playbooks/site.yml", "floor": "bench/ping.yml"}
            for k in range(reruns):
                for who in rotate(list(books), k):
                    self.hosts.acct_on([i], f"local-{who}")
                    run = self.local_playbook(name, books[who], f"local-{who}")
                    procs = self.hosts.acct_off([i], f"local-{who}")[i]
                    runs[who].append(rerun_record(k, run, "localhost", procs) | {"outer_seconds": run["outer_seconds"]})
                    log(f"local: {k + 1}/{reruns} {who} {run['seconds']:.2f} s, changed={runs[who][-1]['changed']}")
        finally:
            if not self.args.keep:
                self.hosts.remove([i])
        secs = {who: [x["seconds"] for x in v] for who, v in runs.items()}
        ratios = pair_ratios(secs["rerun"], secs["floor"])
        self.results["local"] = {
            "controller": controller, "first": first_rec, "runs": runs, "ratios": ratios,
            "summary": {"rerun": summarize(secs["rerun"]), "floor": summarize(secs["floor"]),
                        "ratio": summarize(ratios)},
            "split": split_summary([x["split"] for x in runs["rerun"]]),
            "floor_split": split_summary([x["split"] for x in runs["floor"]]),
        }

    def install_controller(self, name: str) -> dict[str, t.Any]:
        """The controller inside the host: this tree copied to CTL_SRC (what git tracks or would track), the
        collection linked there as scripts/lib.sh links it, a venv of requirements/site.txt from the wheels."""
        t0 = time.monotonic()
        sh(["bash", "-c", "set -o pipefail; git ls-files -z -co --exclude-standard | "
            "tar --null --no-recursion --ignore-failed-read -T - -cf - | "
            f"docker exec -i {name} sh -c 'mkdir -p {CTL_SRC} {CTL_WORK} && tar -xf - -C {CTL_SRC}'"], cwd=REPO)
        script = (
            "set -e; "
            f"python3 -m venv --without-pip {CTL_VENV}; "
            f"PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore {CTL_VENV}/bin/python "
            f"{CTL_WHEELS}/pip-{CTL_PIP}-py3-none-any.whl/pip install -q --no-index --find-links {CTL_WHEELS} "
            f"-r {CTL_SRC}/requirements/site.txt; "
            f"mkdir -p {CTL_SRC}/.build/collections/ansible_collections/mlinfra; "
            f"ln -sfn ../../../.. {CTL_SRC}/.build/collections/ansible_collections/mlinfra/mlhost")
        sh(["docker", "exec", name, "sh", "-c", script])
        seconds = time.monotonic() - t0
        python = sh(["docker", "exec", name, f"{CTL_VENV}/bin/python", "--version"]).stdout.strip()
        ansible = sh(["docker", "exec", name, f"{CTL_VENV}/bin/ansible", "--version"]).stdout.splitlines()[0]
        frozen = sh(["docker", "exec", name, f"{CTL_VENV}/bin/python", "-c",
                     "import importlib.metadata as m; print('\\n'.join(sorted(f\"{d.metadata['Name']}=={d.version}\" "
                     "for d in m.distributions())))"]).stdout.split()
        return {"python": python, "ansible": ansible, "venv": CTL_VENV, "installed": frozen,
                "install_seconds": round(seconds, 1)}

    def local_playbook(self, name: str, playbook: str, label: str) -> dict[str, t.Any]:
        """One local-connection playbook run inside the host (local_command): wall seconds measured there, the
        recorder's data and the log fetched back into runs/."""
        self.seq += 1
        tag = f"{self.seq:03d}-{label}"
        runs = self.out / "runs"
        runs.mkdir(exist_ok=True)
        extra = runs / f"{tag}.vars.json"
        extra.write_text(json.dumps(host_vars("uv", Path(LOCAL_REPORT))))
        sh(["docker", "cp", str(extra), f"{name}:{CTL_WORK}/{extra.name}"])
        times_file, log_file = f"{CTL_WORK}/{tag}.times.json", f"{CTL_WORK}/{tag}.log"
        self.settle()
        t0 = time.monotonic()
        proc = sh(["docker", "exec", name, "bash", "-c",
                   local_command(playbook, f"{CTL_WORK}/{extra.name}", times_file, log_file)])
        outer = time.monotonic() - t0
        rc, seconds = parse_timed(proc.stdout)
        (runs / f"{tag}.log").write_text(sh(["docker", "exec", name, "cat", log_file], check=False).stdout)
        if rc != 0:
            tail = (runs / f"{tag}.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{label}: ansible-playbook in {name} failed (rc {rc}); log {tag}.log:\n{tail}")
        text = sh(["docker", "exec", name, "cat", times_file]).stdout
        (runs / f"{tag}.times.json").write_text(text)
        return {"seconds": seconds, "outer_seconds": round(outer, 3), "times": json.loads(text),
                "log": f"runs/{tag}.log"}

    # ---- env builds
    def env(self) -> None:
        proc = subprocess.run(["bash", str(REPO / "bench" / "python_env.sh"), str(self.args.env_rounds)],
                              text=True, capture_output=True, cwd=REPO, check=False)
        (self.out / "python_env.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"bench/python_env.sh failed (rc {proc.returncode}): {proc.stderr[-3000:]}")
        times: dict[str, list[float]] = {}
        for line in proc.stdout.splitlines():
            m = re.match(r"^(pip|uv-warm|uv-cold|raw-pip|raw-uv|pin-rerun|pin-plan|pin-apply) (\d+\.\d+)$", line)
            if m:
                times.setdefault(m.group(1), []).append(float(m.group(2)))
        summary = {k: summarize(v) for k, v in times.items()}
        self.results["env"] = {"runs": times, "summary": summary, "ratios": {
            "module_pip_over_uv_warm": round(summary["pip"]["median"] / summary["uv-warm"]["median"], 2),
            "module_pip_over_uv_cold": round(summary["pip"]["median"] / summary["uv-cold"]["median"], 2),
            "installers_pip_over_uv": round(summary["raw-pip"]["median"] / summary["raw-uv"]["median"], 2),
            "pin_plan_over_rerun": round(summary["pin-plan"]["median"] / summary["pin-rerun"]["median"], 2),
            "pin_apply_over_rerun": round(summary["pin-apply"]["median"] / summary["pin-rerun"]["median"], 2),
        }}

    def run(self) -> int:
        self.bed.prepare()
        self.results["image"] = self.bed.tag
        only = self.args.only
        if "first" in only or "rerun" in only:
            self.first_and_rerun()
        elif "facts" in only:
            self.hosts.start([3])
            try:
                self.facts(3)
            finally:
                self.hosts.remove([3])
        if "fleet" in only:
            self.fleet()
        if "fleet32" in only:
            self.fleet32()
        if "facts" in only:
            self.facts_local()
        if "env" in only:
            self.env()
        if "local" in only:
            self.local()
        self.results["machine"]["load_end"] = os.getloadavg()
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1))
        (self.out / "summary.md").write_text(summary_md(self.results))
        if "fleet" in only or "fleet32" in only:
            plot = subprocess.run([str(REPO / ".venv" / "bench" / "bin" / "python"), str(REPO / "bench" / "plot.py"),
                                   str(self.out / "results.json"), str(self.out / "fleet.png"),
                                   str(self.out / "fleet32.png")], check=False)
            if plot.returncode != 0:
                log("the plot failed")
                return 1
        print((self.out / "summary.md").read_text())
        problems = check(self.results)
        for p in problems:
            log("PROBLEM: " + p)
        log(f"results in {self.out}")
        return 1 if problems else 0


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def inotify_instances_needed(hosts: int) -> int:
    """inotify instances for that many systemd containers: every container's systemd and its services (journald,
    logind, udev...) take about five, all counted against root's one limit (no user namespaces); the kernel's
    default of 128 stops the 24th container booting (systemd exits 255 with nothing logged)."""
    return 128 + 8 * hosts


def raise_inotify_instances(hosts: int) -> None:
    need = inotify_instances_needed(hosts)
    have = int(INOTIFY_INSTANCES.read_text())
    if have < need:
        log(f"raising fs.inotify.max_user_instances from {have} to {need} for {hosts} systemd containers")
        INOTIFY_INSTANCES.write_text(f"{need}\n")


def _meminfo_used_mib() -> int:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, rest = line.split(":", 1)
        info[key] = int(rest.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) // 1024


def machine() -> dict[str, t.Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    docker = sh(["docker", "version", "-f", "{{.Server.Version}}"], check=False).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory": mem, "kernel": platform.release(),
            "python": platform.python_version(), "docker": docker, "load_start": os.getloadavg()}


def check(results: dict[str, t.Any]) -> list[str]:
    """What must hold in every run, smoke included: reruns change nothing, every figure is there."""
    problems = []
    for who, runs in results.get("rerun", {}).get("runs", {}).items():
        for run in runs:
            if run["changed"] != 0:
                problems.append(f"rerun of {who} changed {run['changed']} tasks (round {run['round']})")
    for n, summary in results.get("fleet", {}).get("summary", {}).items():
        if summary["rerun_changed"] != 0:
            problems.append(f"fleet of {n}: the rerun changed {summary['rerun_changed']} tasks")
    f32 = results.get("fleet32", {})
    for forks, summary in f32.get("summary", {}).items():
        if summary["changed"] != 0:
            problems.append(f"{f32['hosts']} hosts, forks {forks}: a rerun changed {summary['changed']} tasks")
        if summary["hosts_in_recap"] != f32["hosts"]:
            problems.append(f"{f32['hosts']} hosts, forks {forks}: only {summary['hosts_in_recap']} in the recap")
    for run in results.get("local", {}).get("runs", {}).get("rerun", []):
        if run["changed"] != 0:
            problems.append(f"local-connection rerun {run['round'] + 1} changed {run['changed']} tasks")
    return problems


def _row(label: str, s: dict[str, t.Any], unit: str = "") -> str:
    if not s.get("n"):
        return f"| {label} | - | - | - | 0 |"
    return f"| {label} | {s['median']:.2f}{unit} | {s['min']:.2f} | {s['max']:.2f} | {s['n']} |"


def summary_md(res: dict[str, t.Any]) -> str:
    m = res["machine"]
    out = [f"# Benchmark run {res['started']}{' (smoke)' if res['smoke'] else ''}", "",
           f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory']} memory, kernel {m['kernel']}, "
           f"Docker {m['docker']}, harness Python {m['python']}; load average at start "
           f"{m['load_start'][0]:.2f}, at end {m.get('load_end', [0])[0]:.2f}.", ""]
    head = ["| what | median s | min | max | runs |", "|---|---|---|---|---|"]
    if "first" in res:
        f = res["first"]
        out += ["## First provision (one fresh Debian 12 host)", ""] + head
        for who in ("baseline", "ours-pip", "ours-uv"):
            out.append(_row(who, f["summary"][who]))
        out += ["", "| ratio to the baseline, per round | median | min | max | rounds |", "|---|---|---|---|---|"]
        for who, s in f["ratio_to_baseline"].items():
            out.append(_row(who, s))
        out += ["", "| where the time went (median s) | apt | env | rest |", "|---|---|---|---|"]
        for who, runs in f["runs"].items():
            steps = [x.get("steps") or {} for x in runs]
            if all(steps):
                cells = [f"{statistics.median([st[k] for st in steps]):.2f}" for k in ("apt", "env", "rest")]
                out.append(f"| {who} | " + " | ".join(cells) + " |")
        procs = {who: statistics.median([x["processes"] for x in runs]) for who, runs in f["runs"].items()}
        out += ["", "Processes on the host (median): " + ", ".join(f"{k} {v:.0f}" for k, v in procs.items()), ""]
        for who in ("ours-pip", "ours-uv"):
            last = f["runs"][who][-1]
            out.append(f"- slowest tasks, {who}, last round: " + "; ".join(f"{n} {s:.2f} s" for n, s in last.get("slowest", [])))
        out.append("")
    if "rerun" in res:
        r = res["rerun"]
        out += ["## Idempotent rerun (the same host)", ""] + head
        for who, s in r["summary"].items():
            out.append(_row(who, s))
        out.append("")
        for who, why in r.get("dropped", {}).items():
            out.append(f"- {who} FAILED and was left out: {why[-600:]}")
        for who, runs in r["runs"].items():
            if not runs:
                continue
            last = runs[-1]
            top = sorted(last["by_command"].items(), key=lambda kv: -kv[1])[:12]
            out.append(f"- {who}: changed {sorted({x['changed'] for x in runs})}, tasks run "
                       f"{sorted({x['tasks_run'] for x in runs})}, processes {sorted({x['processes'] for x in runs})}, "
                       f"package-state queries {sorted({x['package_queries'] for x in runs})}; last run by command: "
                       + ", ".join(f"{k} {v}" for k, v in top))
            out.append("  - slowest tasks of the last run: " + "; ".join(f"{n} {s:.2f} s" for n, s in last.get("slowest", [])))
            splits = [x["split"] for x in runs if x.get("split")]
            if splits:
                out.append("  - split, median s: " + ", ".join(
                    f"{k} {statistics.median([sp[k] for sp in splits]):.2f}" for k in splits[0]))
        out.append("")
    if "fleet" in res:
        out += ["## Fleet scaling (uv backend, forks = hosts)", "",
                "| hosts | first median s | min | max | rerun median s | min | max | rerun s per host | runs |",
                "|---|---|---|---|---|---|---|---|---|"]
        for n, s in res["fleet"]["summary"].items():
            a, b = s["first"], s["rerun"]
            out.append(f"| {n} | {a['median']:.1f} | {a['min']:.1f} | {a['max']:.1f} | {b['median']:.1f} | "
                       f"{b['min']:.1f} | {b['max']:.1f} | {b['median'] / int(n):.2f} | {a['n']} |")
        out.append("")
    if "fleet32" in res:
        f = res["fleet32"]
        out += [f"## {f['hosts']}-host rerun (one provisioned host committed as an image; forks interleaved)", "",
                f"Hosts up in {f['boot_seconds']} s, {f['memory_used_mib']} MiB of memory in use after; the seed's "
                f"first provision {f['seed_first']:.1f} s; the untimed first rerun {f['warm_up']:.1f} s "
                f"(changed={f['warm_up_changed']}; it writes the fleet report of the new hosts).", "",
                "| forks | rerun median s | min | max | runs | per host s | changed |", "|---|---|---|---|---|---|---|"]
        for forks, s in f["summary"].items():
            b = s["rerun"]
            out.append(f"| {forks} | {b['median']:.1f} | {b['min']:.1f} | {b['max']:.1f} | {b['n']} | "
                       f"{s['per_host']:.2f} | {s['changed']} |")
        out.append("")
        for forks, runs in f["runs"].items():
            out.append(f"- forks {forks}, longest tasks of the last run (first host's start to last host's end): "
                       + "; ".join(f"{n} {s:.2f} s" for n, s in runs[-1]["longest_tasks"]))
        out.append("")
    if "facts" in res:
        out += [f"## Facts, per call ({res['facts']['calls']} calls each, interleaved, one warm-up round left out)",
                ""] + head
        for what, s in res["facts"]["summary"].items():
            out.append(_row(what, s))
        out += ["", f"host_facts / setup (all): {res['facts']['ratio_host_facts_to_setup_all']:.2f}", ""]
    if "facts_local" in res:
        f = res["facts_local"]
        out += [f"## Facts on the controller machine, whole ad-hoc call, local connection ({f['rounds']} rounds, "
                "interleaved, a warm-up round left out)", ""] + head
        for what, s in f["summary"].items():
            out.append(_row(what, s))
        out += ["", f"host_facts / setup (min): {f['ratio_host_facts_to_setup_min']:.2f}", ""]
    if "local" in res:
        loc = res["local"]
        c, f = loc["controller"], loc["first"]
        reruns = loc["runs"]["rerun"]
        out += ["## The main job on the host itself (local connection, inside a bench host)", "",
                f"`ansible-playbook -c local playbooks/site.yml` from a copy of the tree in the host, its ansible.cfg "
                f"and default inventory (localhost), the uv host's variables; controller {c['python']}, "
                f"{c['ansible']} (a venv of requirements/site.txt, installed offline in {c['install_seconds']:.1f} s). "
                f"First provision {f['seconds']:.1f} s (changed={f['changed']}, {f['tasks_run']} tasks run). "
                "Reruns interleaved with the floor (bench/ping.yml the same way), wall time measured inside the host.",
                ""] + head
        out.append(_row("rerun", loc["summary"]["rerun"]))
        out.append(_row("ansible-floor (one ping task, local)", loc["summary"]["floor"]))
        out.append(_row("ratio rerun / floor, per run", loc["summary"]["ratio"]))
        out.append("")
        if reruns:
            last = reruns[-1]
            top = sorted(last["by_command"].items(), key=lambda kv: -kv[1])[:12]
            out.append(f"- rerun: changed {sorted({x['changed'] for x in reruns})}, tasks run "
                       f"{sorted({x['tasks_run'] for x in reruns})}, processes in the host (the controller's "
                       f"included) {sorted({x['processes'] for x in reruns})}, package-state queries "
                       f"{sorted({x['package_queries'] for x in reruns})}; last run by command: "
                       + ", ".join(f"{k} {v}" for k, v in top))
            out.append("  - slowest tasks of the last run: " + "; ".join(f"{n} {s:.2f} s" for n, s in last.get("slowest", [])))
        split, floor = loc.get("split") or {}, loc.get("floor_split") or {}
        if split:
            out += ["", "| where the time went (the callback's split) | rerun median s | min | max | tasks | "
                    "floor median s |", "|---|---|---|---|---|---|"]
            for part in (k for k in split if not k.endswith("_tasks")):
                s, n = split[part], split.get(f"{part}_tasks", {}).get("median")
                fl = floor.get(part, {}).get("median")
                out.append(f"| {part} | {s['median']:.2f} | {s['min']:.2f} | {s['max']:.2f} | "
                           f"{'-' if n is None else f'{n:.0f}'} | {'-' if fl is None else f'{fl:.2f}'} |")
        out.append("")
    if "env" in res:
        out += ["## Env builds: uv against pip (bench/python_env.sh)", ""] + head
        for what, s in res["env"]["summary"].items():
            out.append(_row(what, s))
        out += ["", "Ratios of medians: " + ", ".join(f"{k} {v:.2f}x" for k, v in res["env"]["ratios"].items()), ""]
    return "\n".join(out) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="mlinfra.mlhost benchmarks (see docs/benchmarks.md)")
    p.add_argument("--smoke", action="store_true", help="one round of every part but fleet32 and local, fleets of 1 and 2 (CI)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds; a multiple of 3 gives each first-provision contender each place in the order equally")
    p.add_argument("--reruns", type=int, default=3, help="reruns per host and round (and of the local part)")
    p.add_argument("--sizes", default="1,2,4,8")
    p.add_argument("--facts-calls", type=int, default=10)
    p.add_argument("--env-rounds", type=int, default=3)
    p.add_argument("--only", default="first,rerun,fleet,fleet32,facts,env,local")
    p.add_argument("--fleet32-hosts", type=int, default=32, help="hosts of the fleet32 part")
    p.add_argument("--fleet32-forks", default="8,16,32")
    p.add_argument("--fleet32-rounds", type=int, default=5)
    p.add_argument("--mitogen", default="", help="a directory holding ansible_mitogen: the rerun also runs under "
                   "its mitogen_linear strategy, interleaved with the stock one")
    p.add_argument("--compare", default="", help="a collections path (holding ansible_collections/mlinfra/mlhost) "
                   "whose copy of the collection also reruns the uv host, interleaved: before against after")
    p.add_argument("--keep", action="store_true", help="leave the containers running")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.reruns, args.sizes, args.facts_calls, args.env_rounds = 1, 1, "1,2", 3, 1
    args.sizes = [int(x) for x in str(args.sizes).split(",") if x]
    args.only = set(args.only.split(","))
    if args.smoke:
        args.only.discard("fleet32")  # minutes of containers: not in CI's bench stage
        args.only.discard("local")  # a first provision and reruns in one more host: not in CI's bench stage either
    args.fleet32_forks = [int(x) for x in str(args.fleet32_forks).split(",") if x]
    if args.rounds < 1 or args.reruns < 1 or not args.sizes or min(args.sizes) < 1 or max(args.sizes) > 40:
        p.error("rounds and reruns must be at least 1, sizes between 1 and 40")
    if not 1 <= args.fleet32_hosts <= 40 or args.fleet32_rounds < 1 or not args.fleet32_forks:
        p.error("--fleet32-hosts between 1 and 40 (ports), --fleet32-rounds at least 1, --fleet32-forks not empty")
    return args


def main(argv: list[str]) -> int:
    try:
        return Bench(parse_args(argv)).run()
    except RuntimeError as exc:
        log(f"FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
