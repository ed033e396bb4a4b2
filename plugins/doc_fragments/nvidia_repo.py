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
      - The repository's OpenPGP signing key, as an absolute path on the host, a C(file://) URL, or an http(s) URL (which
        needs O(repo_key_fingerprints) or O(repo_key_sha256)). It becomes the source's C(Signed-By) keyring under
        C(/etc/apt/keyrings/) or the C(.repo) file's C(gpgkey); C(apt-key) is never used.
      - Empty takes the key NVIDIA publishes in the repository tree's directory (for example C(3bf863cc.pub) for
        C(debian12), C(8793F200.pub) for C(debian13), C(D42D0685.pub) for C(rhel8) and C(rhel9)), from O(repo_url) when
        it is set (a mirror that copies NVIDIA's tree), and checks it carries the fingerprint the collection's
        compatibility data lists for the tree (see docs/compatibility.md, with the date it was checked). A tree the data
        does not list (C(rhel10), Fedora) needs O(repo_key) and O(repo_key_fingerprints); the refusal says why O(source=auto)
        chose NVIDIA's repository.
      - The key file is read as OpenPGP packets before anything is written. A file that is not a public key (an HTML
        error page, a private key, a damaged armor) is refused, and on Debian 13 and later a key bound only by SHA-1
        signatures (which that apt rejects from 2026-02-01) is refused with the fix.
    type: str
    default: ""
  repo_key_sha256:
    description: The key file's sha256 (64 hexadecimal digits); checked when given. An http(s) O(repo_key) needs it or O(repo_key_fingerprints).
    type: str
    default: ""
  repo_key_fingerprints:
    description:
      - The full fingerprints (40 hexadecimal digits, 64 for a v6 key; spaces as C(gpg --show-keys) prints them are
        taken) the repository key may carry. Every primary key in the key file must be one of them, since apt and dnf
        trust every key of the file. Give two during a key rotation. A short key id (8 or 16 digits) is refused.
      - Empty with O(repo_key) empty checks NVIDIA's published fingerprint for the tree; empty with O(repo_key) set checks
        none (a key the administrator put on the host is taken as given).
    type: list
    elements: str
    default: []
"""
