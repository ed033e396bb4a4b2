# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The NVIDIA repository options of nvidia_driver and cuda_toolkit (REPO_OPTIONS in module_utils/_nvidia_repo.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  repo_url:
    description:
      - Base URL of NVIDIA's CUDA repository for this distribution, or of a mirror of it (C(http://), C(https://) with a
        host, or C(file://) with an absolute path). Used when the source is NVIDIA's repository.
      - Empty uses C(https://developer.download.nvidia.com/compute/cuda/repos/<distro><release>/<arch>/).
      - A URL that cannot be parsed (a malformed IPv6 host such as C(http://[::1)), another scheme, white space or control
        characters are refused before anything changes. It is not logged (C(no_log)), as a mirror URL can carry
        C(user:token@), which is never printed.
    type: str
    default: ""
  repo_key:
    description:
      - The repository's OpenPGP signing key, as an absolute path on the host, a C(file://) URL, or an https URL (which
        needs O(repo_key_sha256)). It becomes the source's C(Signed-By) keyring under C(/etc/apt/keyrings/) or the
        C(.repo) file's C(gpgkey); C(apt-key) is never used.
      - Required whenever the source is NVIDIA's repository, also when O(source=auto) chose it (the refusal says why it did).
    type: str
    default: ""
  repo_key_sha256:
    description: The key file's sha256 (64 hexadecimal digits); required for a URL, checked for a path when given.
    type: str
    default: ""
"""
