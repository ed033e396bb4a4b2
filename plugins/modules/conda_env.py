#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: conda_env
short_description: Create and update conda environments from an environment.yml or match specs, changing only what must change
version_added: 1.0.0
requirements:
  - py-rattler (engine V(rattler), installed by the module from PyPI into its tool venv), or the C(mamba) or C(conda) of
    a conda base (engines V(mamba), V(conda)), such as the one the miniforge module installs
description:
  - Makes the conda environment at O(prefix) (or O(conda)/envs/O(name)) hold what an environment.yml (O(file)) or
    O(specs) ask for, and reports the packages added, removed and updated.
  - Idempotent by comparison. The environment's C(conda-meta/*.json) records are read and compared with the
    requested match specs under conda's version rules (C(==), C(>=), C(<), C(,), C(|), C(*) globs, C(=1.2)
    meaning 1.2.*, build strings); the C(pip:) subsection is compared in the environment's own Python. When the
    request is met, no solver runs and the result is V(changed=false).
  - "Engines: V(rattler) (py-rattler, installed with the module's own tool venv; no conda base needed) builds the
    new environment beside the old one and swaps them, so a failed update leaves the old environment as it was;
    V(mamba) and V(conda) run the base's CLI with C(--json), relying on conda's transaction (solve before any change,
    rollback on a failed link), and the result is checked against the request afterwards."
  - C(defaults) and Anaconda's repositories are refused (Anaconda's terms of service).
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  name:
    description: The environment's name; it lives in O(conda)/envs/O(name). A plain name only (letters, digits, C(_.+-); no C(/), no C(..), not C(base)).
    type: str
  prefix:
    description:
      - The environment's absolute path (instead of O(name)). System directories, the conda base itself, a conda install's
        C(envs/) directory, paths inside another environment, the tool directory and symlinks into those are refused.
      - An environment the collection creates carries a C(.mlhost-owned) marker; an existing environment without it is
        never replaced, changed or removed (one an earlier version made, recognised by its lock or pip state file, is marked).
    type: path
  file:
    description:
      - An environment.yml on the host (C(name), C(prefix), C(channels), C(dependencies) with an optional C(pip:) subsection).
        A byte-order mark at its start is ignored.
      - Its name or prefix is used when neither O(name) nor O(prefix) is given.
      - "The C(pip:) subsection takes requirements (C(numpy>=1.26), C(name[extra]==1.2), direct references with the project's
        name and an absolute URL such as C(name @ git+https://host/org/repo@v1.2) or C(name @ file:///srv/wheels/name.whl))
        and C(--index-url), C(-i), C(--extra-index-url), C(--find-links) and C(-f) lines, which apply to the pip step of this
        environment (in pip's environment, never on its command line; masked in all output)."
      - The pip subsection is checked before anything is made, in check mode too, with the module's own copy of the
        packaging library (the host's, the tool venv's, pip's vendored one, or a wheel verified by its sha256), so a
        host whose Python lacks packaging is checked all the same. Refused with what to do instead - editable installs
        (C(-e .), C(-e git+...)), other pip options (C(-r), C(-c), C(--pre), ...), paths and URLs without a project name,
        local paths and C(file://) URLs that do not exist on the host, a second C(--index-url), an C(--index-url) that
        differs from O(index_url), and malformed requirements.
    type: path
  specs:
    description: Match specs (C(python=3.11), C(numpy >=1.26,<2)), beside or instead of O(file).
    type: list
    elements: str
    default: []
  channels:
    description:
      - Channels (names such as V(conda-forge), or http(s)/file URLs).
      - With O(file), these B(replace) the file's channels (the file is not edited), so a file that lists C(defaults)
        (refused otherwise) can be used as it is; the result says so (RV(channels_replaced)), check mode too. The empty list
        (the default) uses the file's channels.
      - The engines use only the request's channels (V(mamba)/V(conda) with C(--override-channels)). The channels an
        environment was built from are recorded (as a sha256 in C(conda-meta/mlhost-channels.sha256)); when they change, the
        run is a change and the environment is solved again against the new channels. An environment made before that
        record existed is not compared until its next change.
      - A channel URL may carry a token, so the option is no_log; an item with user-info, a query or a conda C(/t/) token
        stays hidden in all output, a plain name, path or URL is shown.
      - C(nodefaults) in the file's channels is conda's marker, not a channel - dropped (the module never adds
        C(defaults)).
    type: list
    elements: str
    default: []
  conda:
    description: The conda base (a Miniforge prefix) whose C(envs/) holds named environments and whose mamba/conda the CLI engines run.
    type: path
    default: /opt/miniforge3
  prune:
    description: Also remove packages that the request does not need (outside the dependency closure of the requested specs).
    type: bool
    default: false
  engine:
    description:
      - V(auto) is mamba when the base has it, else conda, else rattler.
      - V(rattler) installs C(py-rattler) (pinned) into a venv under O(tool_dir) and solves from the channels directly.
    type: str
    choices: [auto, mamba, conda, rattler]
    default: auto
  lock_file:
    description:
      - Write an explicit lock (C(@EXPLICIT), one package URL with its md5 per line) of the environment here.
      - Its first line marks it as the collection's; an existing file without that line (or an earlier version's header) is
        never overwritten, and system paths are refused.
    type: path
  tool_dir:
    description: Where the module keeps its tool venv (py-rattler and packaging) and rattler's package cache.
    type: path
    default: /opt/mlhost/tools
  index_url:
    description:
      - The Python package index for the tool venv and the C(pip:) subsection (a mirror). May hold credentials; never logged.
      - An C(--index-url) line in the pip subsection must agree with it (pip uses one index); its C(--extra-index-url) lines
        are added.
    type: str
  find_links:
    description: Local wheel directories or URLs for the tool venv and the C(pip:) subsection (with its C(--find-links) lines). Never logged.
    type: list
    elements: str
    default: []
  ca_bundle:
    description:
      - A CA bundle for pip and rattler downloads (a TLS-intercepting proxy, a private mirror).
      - Unset, the host's system bundle is used, the first of C(/etc/ssl/certs/ca-certificates.crt),
        C(/etc/pki/tls/certs/ca-bundle.crt), C(/etc/ssl/ca-bundle.pem), C(/etc/ssl/cert.pem) that exists, so that a proxy CA
        that the host trusts is trusted by pip in the env (certifi's roots otherwise) and by rattler too.
    type: path
  timeout:
    description: Seconds a solve/install may run (at least 1).
    type: int
    default: 1800
  state:
    description: V(present), or V(absent) (removes the environment; only a conda environment the collection made is removed).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.proxy
attributes:
  check_mode:
    support: full
    details: Compares without side effects; with rattler (once its tool venv exists) or mamba/conda it also solves, so the plan shows real versions.
  diff_mode:
    support: full
notes:
  - conda's C(environment.yml) C(variables) key is not applied.
  - "A failed C(pip:) step - a new environment (nothing was at its path before the run) is removed, whatever the engine, so
    no half-built environment is left; an update with V(rattler) puts the previous environment back (it was built beside
    and swapped in); an update with V(mamba)/V(conda) is in place (conda prefixes embed their path, so the CLI's
    environment cannot be built elsewhere and moved) - its conda packages stay updated, pip may have installed part of the
    subsection, and the run fails naming the pip error; the next run completes it."
  - Without O(prune), packages the environment holds beyond the request are kept (as conda install keeps them).
seealso:
  - module: mlinfra.mlhost.miniforge
  - name: conda_env documentation
    description: Engines, comparison rules and failure behaviour.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/modules/conda_env.md
"""

EXAMPLES = r"""
- name: An environment from an environment.yml kept in git
  mlinfra.mlhost.conda_env:
    file: /etc/mlhost/envs/train.yml
    conda: /opt/miniforge3
    prune: true
    lock_file: /opt/miniforge3/envs/train.lock

- name: A published environment.yml that lists defaults, used as it is with conda-forge's mirror instead
  mlinfra.mlhost.conda_env:
    file: /etc/mlhost/envs/project.yml
    channels: [https://conda.mirror.example/conda-forge]

- name: From match specs, with rattler and a local channel (no conda base needed)
  mlinfra.mlhost.conda_env:
    prefix: /opt/envs/tools
    specs: ["python=3.12", "numpy >=1.26,<2"]
    channels: [file:///srv/conda-channel]
    engine: rattler
"""

RETURN = r"""
env_prefix:
  description: The environment's path.
  type: str
  returned: always
  sample: /opt/miniforge3/envs/train
engine:
  description: The engine chosen (mamba, conda or rattler).
  type: str
  returned: when state is present
  sample: rattler
packages:
  description: Conda packages the environment holds after the run (name to version).
  type: dict
  returned: always
  sample: {python: 3.11.10, numpy: 1.26.4}
added:
  description: Packages added (name to version).
  type: dict
  returned: always
  sample: {numpy: 1.26.4}
removed:
  description: Packages removed (name to version).
  type: dict
  returned: always
  sample: {scipy: 1.14.1}
updated:
  description: Packages whose version or build changed (name to {from, to}, as version-build).
  type: dict
  returned: always
  sample: {python: {from: 3.11.9-h1_0, to: 3.11.10-h2_0}}
pip:
  description: Changes of the pip subsection (added, removed, upgraded, downgraded; in check mode the unmet requirements under install).
  type: dict
  returned: always
  sample: {added: {requests: 2.32.3}, removed: {}, upgraded: {}, downgraded: {}}
channels:
  description: The channels the request uses (after O(channels) replaced the file's, C(nodefaults) dropped), masked.
  type: list
  elements: str
  returned: when state is present
  sample: [conda-forge]
channels_replaced:
  description: When O(channels) replaced the channels of O(file), the file's (C(file)) and what replaced them (C(by)); else null.
  type: dict
  returned: when state is present
  sample: {file: [pytorch, nvidia, conda-forge, defaults], by: [conda-forge]}
channels_changed:
  description: Whether the channels differ from those the environment was last built from (a change that solves it again).
  type: bool
  returned: when state is present
  sample: false
unmet:
  description: Requested match specs the environment did not meet before the run (empty after a successful change).
  type: list
  elements: str
  returned: when state is present
  sample: ["numpy >=1.26,<2"]
lock:
  description: The explicit lock file written, or null.
  type: str
  returned: always
  sample: /opt/miniforge3/envs/train.lock
commands:
  description: The commands this run ran, in order (inline scripts shown as C(<script>)).
  type: list
  elements: str
  returned: always
  sample: ["/opt/mlhost/tools/conda-venv/bin/python -I -c <script>"]
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._conda_env import CondaEnv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS

ARGUMENT_SPEC = {
    **PROXY_OPTIONS,
    "name": {"type": "str"},
    "prefix": {"type": "path"},
    "file": {"type": "path"},
    "specs": {"type": "list", "elements": "str", "default": []},
    "channels": {"type": "list", "elements": "str", "default": [], "no_log": True},
    "conda": {"type": "path", "default": "/opt/miniforge3"},
    "prune": {"type": "bool", "default": False},
    "engine": {"type": "str", "choices": ["auto", "mamba", "conda", "rattler"], "default": "auto"},
    "lock_file": {"type": "path"},
    "tool_dir": {"type": "path", "default": "/opt/mlhost/tools"},
    "index_url": {"type": "str", "no_log": True},
    "find_links": {"type": "list", "elements": "str", "default": [], "no_log": True},
    "ca_bundle": {"type": "path"},
    "timeout": {"type": "int", "default": 1800},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, CondaEnv, mutually_exclusive=[("name", "prefix")])


if __name__ == "__main__":
    main()
