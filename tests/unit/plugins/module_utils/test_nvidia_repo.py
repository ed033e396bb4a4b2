# SPDX-License-Identifier: GPL-3.0-or-later
"""Package sources for the NVIDIA stack: the exact files written for Debian's components and NVIDIA's repository."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_repo as repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError

CONTAINER_SOURCES = """\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
"""

# The deb822 file of the machines these tests run on (Debian 12 cloud image).
DEB822_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

ARMORED = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF...\n-----END PGP PUBLIC KEY BLOCK-----\n"
BINARY = b"\x99\x02\x0d\x04stand-in key body"


def test_one_line_sources_get_a_stanza_per_archive_with_only_the_missing_components():
    entries = repo.parse_one_line_sources(CONTAINER_SOURCES, "/etc/apt/sources.list")
    assert entries[0] == repo.AptEntry("http://deb.debian.org/debian", ("bookworm",), ("main",), None, "/etc/apt/sources.list")
    text = repo.debian_components_file(entries, "bookworm")
    assert text.startswith(repo.MANAGED)
    assert (
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: contrib non-free non-free-firmware\n"
    ) in text
    assert "URIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: contrib non-free non-free-firmware\n" in text


def test_deb822_sources_keep_their_signed_by_keyring():
    entries = repo.parse_deb822_sources(DEB822_SOURCES, "/etc/apt/sources.list.d/debian.sources")
    assert [e.suites for e in entries] == [("bookworm", "bookworm-updates"), ("bookworm-security",)]
    text = repo.debian_components_file(entries, "bookworm")
    assert text.count("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg") == 2


def test_nothing_is_written_when_the_components_are_there_already():
    sources = CONTAINER_SOURCES.replace(" main\n", " main contrib non-free non-free-firmware\n")
    assert repo.debian_components_file(repo.parse_one_line_sources(sources, "x"), "bookworm") is None


def test_only_what_is_missing_is_added_and_other_releases_are_ignored():
    sources = "deb http://m/debian bookworm main non-free\ndeb http://m/debian trixie main\n# deb http://m/debian bookworm contrib\n"
    text = repo.debian_components_file(repo.parse_one_line_sources(sources, "x"), "bookworm")
    assert "Suites: bookworm\nComponents: contrib non-free-firmware\n" in text
    assert "trixie" not in text


def test_options_and_disabled_stanzas_are_understood():
    line = repo.parse_one_line_sources("deb [arch=amd64 signed-by=/k.gpg] http://m/debian/ bookworm main\n", "x")
    assert line == [repo.AptEntry("http://m/debian", ("bookworm",), ("main",), "/k.gpg", "x")]
    disabled = repo.parse_deb822_sources("Types: deb\nURIs: http://m\nSuites: bookworm\nComponents: main\nEnabled: no\n", "x")
    assert disabled == []


def test_read_apt_sources_skips_our_own_file(tmp_path):
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text(CONTAINER_SOURCES)
    (tmp_path / "etc/apt/sources.list.d/mlhost-debian-nonfree.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: contrib non-free non-free-firmware\n"
    )
    entries = repo.read_apt_sources(str(tmp_path), skip=[repo.DEBIAN_COMPONENTS_FILE])
    assert {e.origin for e in entries} == {"/etc/apt/sources.list"}


@pytest.mark.parametrize(
    "distro, arch, path",
    [
        ({"id": "debian", "major": "12", "version": "12", "family": "debian"}, "x86_64", "debian12/x86_64"),
        ({"id": "debian", "major": "13", "version": "13", "family": "debian"}, "x86_64", "debian13/x86_64"),
        ({"id": "ubuntu", "major": "24", "version": "24.04", "family": "debian"}, "aarch64", "ubuntu2404/sbsa"),
        ({"id": "rocky", "major": "9", "version": "9.4", "family": "redhat"}, "x86_64", "rhel9/x86_64"),
        ({"id": "almalinux", "major": "10", "version": "10.0", "family": "redhat"}, "x86_64", "rhel10/x86_64"),
        ({"id": "fedora", "major": "42", "version": "42", "family": "redhat"}, "x86_64", "fedora42/x86_64"),
    ],
)
def test_nvidia_repository_layout(distro, arch, path):
    assert repo.nvidia_repo_path(distro, arch) == path
    assert repo.default_repo_url(distro, arch) == f"https://developer.download.nvidia.com/compute/cuda/repos/{path}/"


@pytest.mark.parametrize(
    "distro, arch, words",
    [
        ({"id": "debian", "major": "11", "version": "11", "family": "debian"}, "x86_64", "no tree for"),
        ({"id": "debian", "major": "12", "version": "12", "family": "debian"}, "aarch64", "no aarch64"),
        ({"id": "debian", "major": "12", "version": "12", "family": "debian"}, "ppc64le", "architecture 'ppc64le'"),
    ],
)
def test_unsupported_repository_trees_are_refused(distro, arch, words):
    with pytest.raises(ModuleError, match=words):
        repo.nvidia_repo_path(distro, arch)


def test_apt_files_for_nvidia_repository_use_signed_by_and_a_pin():
    files = repo.nvidia_repo_files("apt", "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/", ARMORED)
    assert files["/etc/apt/keyrings/mlhost-nvidia-cuda.asc"] == ARMORED
    assert files["/etc/apt/keyrings/mlhost-nvidia-cuda.gpg"] is None
    source = files[repo.APT_SOURCE].decode()
    assert source.endswith(
        "Types: deb\nURIs: https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/\nSuites: /\n"
        "Signed-By: /etc/apt/keyrings/mlhost-nvidia-cuda.asc\n"
    )
    assert "apt-key" not in source
    assert files[repo.APT_PIN].decode().endswith("Package: *\nPin: origin developer.download.nvidia.com\nPin-Priority: 600\n")


def test_a_binary_key_and_a_file_mirror():
    files = repo.nvidia_repo_files("apt", "file:///srv/mirror/nvidia/debian12/x86_64/", BINARY)
    assert files["/etc/apt/keyrings/mlhost-nvidia-cuda.gpg"] == BINARY
    assert files["/etc/apt/keyrings/mlhost-nvidia-cuda.asc"] is None
    assert files[repo.APT_PIN] is None  # a file:// repository has no origin host to pin by
    assert "URIs: file:///srv/mirror/nvidia/debian12/x86_64/\n" in files[repo.APT_SOURCE].decode()


def test_dnf_repo_file_checks_signatures_with_the_given_key():
    files = repo.nvidia_repo_files("dnf", "https://mirror.example/cuda/rhel9/x86_64/", ARMORED)
    assert files[repo.DNF_KEY] == ARMORED
    text = files[repo.DNF_REPO].decode()
    assert "[mlhost-nvidia-cuda]\n" in text
    assert "baseurl=https://mirror.example/cuda/rhel9/x86_64/\nenabled=1\ngpgcheck=1\n" in text
    assert f"gpgkey=file://{repo.DNF_KEY}\n" in text


@pytest.mark.parametrize("url", ["ftp://m/x", "mirror.example/cuda", "https://", ""])
def test_bad_repo_urls(url):
    with pytest.raises(ModuleError, match="not an http"):
        repo.check_repo_url(url)


def test_repo_url_gets_a_trailing_slash():
    assert repo.check_repo_url("http://m/cuda") == "http://m/cuda/"


def test_a_key_must_be_an_openpgp_key():
    repo.check_key(ARMORED, "k")
    repo.check_key(BINARY, "k")
    with pytest.raises(ModuleError, match="not an OpenPGP public key"):
        repo.check_key(b"<html>404</html>", "repo_key https://x/k.pub")


def test_fileset_plans_then_writes_atomically_with_mode_and_removes(tmp_path):
    files = repo.FileSet(str(tmp_path))
    plan = files.plan({"/etc/x/a.conf": b"one\n", "/etc/x/gone.conf": None})
    assert plan == [repo.FileChange("/etc/x/a.conf", None, b"one\n", 0o644)]  # an absent file to remove is no change
    assert plan[0].action == "write /etc/x/a.conf" and plan[0].diff()["before"] == "(absent)\n"
    assert not (tmp_path / "etc").exists()  # planning writes nothing
    files.apply(plan)
    assert stat.S_IMODE(os.stat(tmp_path / "etc/x/a.conf").st_mode) == 0o644
    assert files.plan({"/etc/x/a.conf": b"one\n"}) == []
    files.apply(files.plan({"/etc/x/a.conf": b"two\n"}))
    assert (tmp_path / "etc/x/a.conf").read_bytes() == b"two\n"
    assert [n for n in os.listdir(tmp_path / "etc/x") if "mlhost-tmp" in n] == []
    removal = files.plan({"/etc/x/a.conf": None})
    assert [c.action for c in removal] == ["remove /etc/x/a.conf"]
    files.apply(removal)
    assert not (tmp_path / "etc/x/a.conf").exists() and files.plan({"/etc/x/a.conf": None}) == []


def test_diff_of_binary_keys_shows_a_checksum():
    diff = repo.text_diff("/k.gpg", None, BINARY)
    assert diff["before"] == "(absent)\n" and diff["after"].startswith("(binary, sha256 ")
