#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: python_env
short_description: Create and update Python virtual environments atomically, with uv or pip
version_added: 1.0.0
requirements:
  - Python 3.8 or newer on the managed host; C(python3-venv) is not needed (without it, venvs are made with
    C(--without-pip) and pip comes from a pip wheel checked by its sha256)
  - uv (the default backend) or pip; the module installs uv and C(packaging) itself into its tool venv (O(tool_dir))
description:
  - Creates a venv at O(path) with the requested packages, or updates it, and reports exactly which
    packages were added, removed, upgraded and downgraded.
  - Idempotent by the whole request. A fingerprint of the request is stored with the environment (in its
    C(mlhost-env.json)) - the requirement and constraint lines after the files' C(-r) and C(-c) includes, with their
    extras, URL targets (a local file target by its sha256), markers and hashes, the files' and the module's index and
    find-links options, the PyTorch wheel index, the Python minor version and O(backend). A rerun with the same
    fingerprint whose environment holds exactly what it was built with runs nothing but one read of the environment
    (its own interpreter's probe, which answers for O(python) too when the environment's interpreter is that very file;
    else the interpreter is probed as well, two reads), no resolution, no network, and is V(changed=false). Any change
    to the request (an extra added, a URL target changed, a constraints file added, an included file edited, an index
    changed) or to the packages installed (changed outside python_env) builds a new generation beside the current one
    from the request. Reordering lines, spacing, comments, a BOM or CRLF line ends are not changes. Credentials count
    in the fingerprint only through a salted PBKDF2 of them, and are never shown.
  - An environment made by an earlier version of the collection (no fingerprint recorded) is rebuilt once, with the
    reason in RV(reasons) - it was compared by name and version only, which took an added extra, a changed URL target
    or an added constraints file as met. An environment the collection did not make is never replaced - it is read,
    and left alone when it meets the request by name and version.
  - The content of a local directory target (C(name @ file:///src/pkg)) or of a O(find_links) wheelhouse is not part
    of the fingerprint; pin versions, or change the request, to have a new build.
  - Atomic updates. O(path) is a symlink to a generation directory; an update builds a new generation
    beside the current one, installs, imports the requested packages' top-level modules, and only then
    swaps the symlink. A failed install or import leaves the old environment exactly as it was.
  - Never installs into a system interpreter, and never touches C(EXTERNALLY-MANAGED).
  - Picks PyTorch's CUDA wheel index from the host's NVIDIA driver (O(torch_cuda=auto)).
  - uv (the default backend) is installed by the module itself, with C(packaging), into a tool venv
    (O(tool_dir)), from the index or O(find_links); never into a system Python.
  - Fresh hosts need nothing first. The tool venv is made with C(python -m venv --without-pip), and a pip wheel run as
    a zipapp installs uv and C(packaging) into it - the host's own pip wheel (C(/usr/share/python-wheels), or the
    interpreter's ensurepip copy) when it has one, else C(pip-26.3-py3-none-any.whl) from O(find_links) or the index,
    checked by its sha256. With O(backend=pip) on a host without ensurepip (no C(python3-venv)), the environment is
    made the same way and gets its pip from that wheel. When no wheel can be had, the venv is made with ensurepip
    (C(python3-venv), which ml_host's build tools may install after its validate phase), and the plan warns, naming
    the wheel and its sha256.
author:
  - mlinfra.mlhost developers (@mlinfra)
options:
  path:
    description: Absolute path of the environment (a symlink to its current generation). System locations are refused.
    type: path
    required: true
  python:
    description: The interpreter to build the environment from, a name on C(PATH) or an absolute path.
    type: str
    default: python3
  packages:
    description: Requirements, one per item (C(numpy>=2), C(torch==2.5.1), C(requests[socks])).
    type: list
    elements: str
    default: []
  requirements:
    description:
      - A requirements file on the host, read as pip reads it and handed to the installer as it is.
      - Read - requirement lines (C(name[extras] specifiers ; markers), C(name @ URL)); C(-r) and C(-c) includes,
        paths relative to the including file (a cycle, or includes more than 10 deep, are refused); C(--hash) options
        with backslash continuations (the output of C(uv pip compile --generate-hashes) or C(pip-compile
        --generate-hashes); one hash puts the whole request into pip's require-hashes mode, and uv is run with
        C(--require-hashes) then); C(-i)/C(--index-url), C(--extra-index-url), C(-f)/C(--find-links) (credentials in
        them are masked in every message, result and diff), C(--no-index), C(--require-hashes), C(--pre),
        C(--prefer-binary), C(--only-binary), C(--no-binary), C(--trusted-host) (C(--pre),
        C(--prefer-binary) and C(--trusted-host) with O(backend=pip) only - uv ignores them in a file, with a warning);
        a UTF-8 or UTF-16 BOM; CRLF line ends.
      - Refused, naming the file and line - C(-e)/C(--editable) (an editable install is a development checkout; install
        the project as C(name @ file:///path/to/project) or from a wheel in O(find_links)); a bare path or URL without
        a name (write C(name @ file:///path/name.whl)); an include by URL; C(${VARIABLE}) references (template the file
        instead); other pip options; a file not in UTF-8.
    type: path
  constraints:
    description: A constraints file on the host, read like O(requirements) (its lines constrain, they do not request), passed to the installer.
    type: path
  backend:
    description: V(uv), V(pip), or V(auto) (uv, falling back to pip when uv cannot be installed).
    type: str
    choices: [auto, uv, pip]
    default: auto
  index_url:
    description: The package index to use instead of PyPI (a mirror). May hold credentials; never logged.
    type: str
  extra_index_urls:
    description: More indexes. May hold credentials; never logged.
    type: list
    elements: str
    default: []
  find_links:
    description: Local wheelhouse directories (or URLs) to install from, beside or instead of an index.
    type: list
    elements: str
    default: []
  offline:
    description: Install from O(find_links) only, with no index at all (HPC sites without internet).
    type: bool
    default: false
  torch_cuda:
    description:
      - Which PyTorch wheels to install when C(torch), C(torchvision) or C(torchaudio) is requested.
      - V(auto) reads which builds the PyTorch index (O(torch_index_url)) has for the pinned torch, this Python and this
        machine, and picks the newest CUDA build that this host's NVIDIA driver runs and that still has kernels for the
        host's oldest GPU (CUDA 12.8+ builds of torch 2.8+ dropped Maxwell and Pascal, CUDA 13 builds and torch 2.11+
        CUDA 12.8+ builds Volta), else V(cpu). A host without a driver gets V(cpu) whatever the torch version, with
        nothing fetched. When the index cannot be read, a dated table decides for the torch releases it knows.
      - V(cpu) or a tag such as V(cu124) forces one; V(none) leaves the index alone (PyPI's default torch wheels).
      - Another build in an existing environment (C(2.5.1+cpu) where V(cu124) is chosen) is a change, and the
        environment is rebuilt. With O(offline=true) no index is read and the wheelhouse holds the build.
    type: str
    default: auto
  import_check:
    description:
      - What is checked in a new environment before it is swapped in (an update builds a new one too); a failed check
        keeps the old environment.
      - V(auto) imports each requested distribution's own module - the top-level module named like the distribution,
        else its first public one, read from its metadata (C(top_level.txt), else C(RECORD)); C(scikit-learn) imports
        C(sklearn), C(black) imports C(black) and not C(blackd), which needs an extra. The installer's own dependency
        check runs first (C(uv pip check) or C(pip check)).
      - A list of module names imports those instead (after the same dependency check).
      - V(off) checks nothing (an unquoted C(off) that YAML reads as false is off too).
      - Not part of the request - changing it changes nothing on an existing environment.
    type: list
    elements: str
    default: [auto]
  torch_index_url:
    description:
      - The base of PyTorch's wheel index (a mirror may serve it, C(file://) too); the tag is appended.
      - V(torch_cuda=auto) reads its page of all builds, C(<torch_index_url>/torch/), else the per-build pages
        C(<torch_index_url>/<tag>/torch/).
    type: str
    default: https://download.pytorch.org/whl
  lock_file:
    description:
      - Write the environment's exact pins (C(name==version)) here after a successful install.
      - An existing file is overwritten only when the collection wrote it (its first line is C(# Written by mlinfra.mlhost)).
    type: path
  ca_bundle:
    description:
      - A CA bundle for the installers (a TLS-intercepting proxy, a private index), handed to uv as C(SSL_CERT_FILE)
        and to pip as C(PIP_CERT).
      - Unset, the host's system bundle is used, the first of C(/etc/ssl/certs/ca-certificates.crt),
        C(/etc/pki/tls/certs/ca-bundle.crt), C(/etc/ssl/ca-bundle.pem), C(/etc/ssl/cert.pem) that exists; uv would
        otherwise use its own built-in roots and pip in a venv certifi's, and a host whose store trusts a
        TLS-intercepting proxy would fail with C(invalid peer certificate - UnknownIssuer).
    type: path
  owner:
    description: Owner of the environment's files.
    type: str
  group:
    description: Group of the environment's files.
    type: str
  mode:
    description: Mode of the environment's top directory, as an octal string (V(0755), V(0750)); world-writable and setuid/setgid/sticky modes are refused.
    type: str
  tool_dir:
    description: Where the module keeps its own tool venv (uv and packaging).
    type: path
    default: /opt/mlhost/tools
  state:
    description: V(present) or V(absent) (removes the environment and its generations).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - mlinfra.mlhost.attributes
  - mlinfra.mlhost.proxy
attributes:
  check_mode:
    support: full
    details:
      - >-
        Check mode is the plan: every option checked, the environment read and compared (on a fresh host too, with the
        host's packaging or the copy pip vendors), and the packages that would be added, removed, upgraded and downgraded
        reported (requirements whose marker does not hold for the target interpreter left out, for a new environment
        too). The diff shows the request recorded with the environment and the request asked, with the packages before
        and the ones planned.
      - >-
        When the request changed, check mode (and diff mode) asks the installer itself for the whole resolution of the
        request for the target interpreter - C(uv pip compile) with uv, the environment's own
        C(pip install --dry-run --ignore-installed --report) with pip - so RV(added), RV(removed), RV(upgraded) and
        RV(downgraded) are the whole set the real run installs, dependencies of extras and constraints included, and the
        diff shows the resolved set. A request the installer cannot resolve is refused in the plan with the installer's
        words, before anything changes. Where the installer is not there yet (uv before the first real run made the tool
        venv; a pip environment still to be made) the plan compares the requested lines, and RV(resolution) says so.
        An unchanged rerun resolves nothing and makes no network call.
  diff_mode:
    support: full
notes:
  - Index URLs travel to the installers in environment variables, not on the command line.
  - Nothing the collection did not create is removed or replaced. An environment it made carries a C(.mlhost-owned)
    marker in its generation directory (environments made by earlier versions, a symlink into C(.<name>.mlhost-envs/)
    with C(mlhost-env.json), count as its own); a lock file starts with the line C(# Written by mlinfra.mlhost).
    An existing directory without the marker is refused for V(state=absent), a rebuild or a replacement; to adopt it,
    create the marker file in it.
seealso:
  - name: python_env documentation
    description: Layout, idempotence and failure behaviour.
    link: https://github.com/mlinfra/mlhost/blob/main/docs/modules/python_env.md
"""

EXAMPLES = r"""
- name: A training environment with the PyTorch wheels that fit this host's driver
  mlinfra.mlhost.python_env:
    path: /opt/envs/train
    python: python3.11
    packages: ["torch==2.5.1", "numpy<2"]
    lock_file: /opt/envs/train.lock

- name: From a private mirror, with a token that is never logged
  mlinfra.mlhost.python_env:
    path: /opt/envs/tools
    requirements: /etc/mlhost/tools-requirements.txt
    index_url: "https://{{ pypi_token }}@pypi.example.internal/simple"
    backend: pip

- name: Offline, from a wheelhouse
  mlinfra.mlhost.python_env:
    path: /opt/envs/offline
    packages: [six==1.17.0]
    find_links: [/srv/wheelhouse]
    offline: true
"""

RETURN = r"""
action:
  description: What the run does (or, in check mode, would do) to the environment.
  type: str
  returned: always
  choices: [none, create, update, rebuild, remove]
  sample: update
env_path:
  description: The environment's path.
  type: str
  returned: always
  sample: /opt/envs/train
lock:
  description: The lock file written (exact pins), or null.
  type: str
  returned: always
  sample: /opt/envs/train.lock
backend:
  description: The installer used.
  type: str
  returned: when state is present
  sample: uv
python_version:
  description: The environment's Python version.
  type: str
  returned: when state is present
  sample: 3.11.2
installed:
  description: Distributions in the environment (normalized name to version), without pip/setuptools/wheel unless requested.
  type: dict
  returned: when state is present
  sample: {numpy: 1.26.4, six: 1.17.0}
added:
  description: Distributions added by this run (name to version).
  type: dict
  returned: always
  sample: {attrs: 24.2.0}
removed:
  description: Distributions removed by this run (name to version).
  type: dict
  returned: always
  sample: {packaging: "24.2"}
upgraded:
  description: Distributions upgraded by this run (name to {from, to}).
  type: dict
  returned: always
  sample: {six: {from: 1.16.0, to: 1.17.0}}
downgraded:
  description: Distributions downgraded by this run (name to {from, to}).
  type: dict
  returned: always
  sample: {}
reasons:
  description:
    - Why an environment that exists is rebuilt - the request changed, packages changed outside python_env, or it was
      made before the fingerprint was recorded. Empty when nothing changes.
  type: list
  elements: str
  returned: always
  sample: ["the request changed (requirements, extras, URLs, constraints, index options, torch index, Python or backend)"]
torch_index:
  description: The PyTorch wheel tag used (cu124, cpu), or null when no torch package was requested.
  type: str
  returned: when state is present
  sample: cu124
commands:
  description: The commands this run ran, in order (inline scripts shown as C(<script>); index URLs are never on a command line).
  type: list
  elements: str
  returned: always
  sample: ["/usr/bin/python3 -I -c <script>", "/opt/envs/train/bin/python -I -c <script>"]
resolution:
  description:
    - How a changed request was planned - V(uv pip compile) or V(pip install --dry-run --report) (the installer's whole
      resolution), or C(not resolved) with the reason (the requested lines compared). Only in check mode and diff
      mode, where the plan is the result.
  type: str
  returned: when the request changed, in check mode or diff mode
  sample: uv pip compile
generation:
  description: The generation directory the environment now points at.
  type: str
  returned: when changed
  sample: /opt/envs/.train.mlhost-envs/20261122T101500-a1b2c3
"""

from ansible_collections.mlinfra.mlhost.plugins.module_utils._module import run_module
from ansible_collections.mlinfra.mlhost.plugins.module_utils._python_env import PythonEnv
from ansible_collections.mlinfra.mlhost.plugins.module_utils._run import PROXY_OPTIONS

ARGUMENT_SPEC = {
    **PROXY_OPTIONS,
    "path": {"type": "path", "required": True},
    "python": {"type": "str", "default": "python3"},
    "packages": {"type": "list", "elements": "str", "default": []},
    "requirements": {"type": "path"},
    "constraints": {"type": "path"},
    "backend": {"type": "str", "choices": ["auto", "uv", "pip"], "default": "auto"},
    "index_url": {"type": "str", "no_log": True},
    "extra_index_urls": {"type": "list", "elements": "str", "default": [], "no_log": True},
    "find_links": {"type": "list", "elements": "str", "default": [], "no_log": True},
    "offline": {"type": "bool", "default": False},
    "torch_cuda": {"type": "str", "default": "auto"},
    "import_check": {"type": "list", "elements": "str", "default": ["auto"]},
    "torch_index_url": {"type": "str", "default": "https://download.pytorch.org/whl", "no_log": True},
    "lock_file": {"type": "path"},
    "ca_bundle": {"type": "path"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "str"},
    "tool_dir": {"type": "path", "default": "/opt/mlhost/tools"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


def main() -> None:
    run_module(ARGUMENT_SPEC, PythonEnv)


if __name__ == "__main__":
    main()
