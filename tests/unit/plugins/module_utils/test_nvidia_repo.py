# SPDX-License-Identifier: GPL-3.0-or-later
"""Package sources for the NVIDIA stack: the exact files written for Debian's components and NVIDIA's repository."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _nvidia_repo as repo
from ansible_collections.mlinfra.mlhost.plugins.module_utils._errors import ModuleError
from mlhost_testlib import FIXTURES

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

# Test keys made for these tests (fixtures/openpgp/README.md has how, and the fingerprints gpg printed).
ARMORED = (FIXTURES / "openpgp/test-rsa3072-sha512.asc").read_bytes()
BINARY = (FIXTURES / "openpgp/test-ed25519-sha1.gpg").read_bytes()
KEYRING = (FIXTURES / "openpgp/test-three-keys.gpg").read_bytes()
FPR_A = "56D39643D5238D326B02F98B9655AE0657EFF1E2"
FPR_B = "C56768DDEC16F151F8C97254093B74097F6210A2"
DEBIAN12 = {"id": "debian", "major": "12", "version": "12", "family": "debian", "name": "Debian GNU/Linux 12"}
DEBIAN13 = {"id": "debian", "major": "13", "version": "13", "family": "debian", "name": "Debian GNU/Linux 13"}


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


def test_a_key_must_be_an_openpgp_public_key():
    assert repo.check_key_data(ARMORED, "k") == [FPR_A]
    assert repo.check_key_data(BINARY, "k") == [FPR_B]
    for data, words in [
        (b"<html>404</html>", "not an OpenPGP public key: byte 0 is not the start"),
        (b"", "it is empty"),
        (b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n", "not as a PGP PUBLIC KEY BLOCK"),
        (ARMORED[:200], "not an OpenPGP public key"),
        (BINARY[:40], "cut short"),
    ]:
        with pytest.raises(ModuleError, match=words):
            repo.check_key_data(data, "repo_key https://x/k.pub")


def plan_for(fingerprints, published=False):
    return repo.KeyPlan("/k.pub", tuple(fingerprints), "NVIDIA's published key for debian12 (k.pub)" if published else "repo_key",
                        published)


def test_the_key_must_carry_the_fingerprint_asked_and_no_other_key():
    assert repo.check_key_data(ARMORED, "k", plan_for([FPR_A])) == [FPR_A]
    # Rotation: either of two fingerprints is taken.
    assert repo.check_key_data(BINARY, "k", plan_for([FPR_A, FPR_B])) == [FPR_B]
    with pytest.raises(ModuleError, match="holds the key 56D3 9643 .*, not C567 68DD .*repo_key_fingerprints.*rotated"):
        repo.check_key_data(ARMORED, "k", plan_for([FPR_B]))
    # A keyring with one key asked and two more: apt would trust all three, so it is refused.
    with pytest.raises(ModuleError, match="holds the keys .*must hold only the keys named"):
        repo.check_key_data(KEYRING, "k", plan_for([FPR_A]))
    with pytest.raises(ModuleError, match="the collection's data lists, checked 20..-..-..\\).*a mirror that signs with its own key"):
        repo.check_key_data(ARMORED, "k", plan_for([FPR_B], published=True))


def test_debian13_refuses_a_key_bound_only_by_sha1_and_debian12_takes_it():
    assert repo.check_key_data(BINARY, "k", plan_for([FPR_B]), DEBIAN12) == [FPR_B]
    with pytest.raises(ModuleError, match="bound only by SHA-1 signatures: Debian GNU/Linux 13's apt rejects"):
        repo.check_key_data(BINARY, "k", plan_for([FPR_B]), DEBIAN13)
    assert repo.check_key_data(ARMORED, "k", plan_for([FPR_A]), DEBIAN13) == [FPR_A]


@pytest.mark.parametrize(
    "value, words",
    [
        (["3BF863CC"], "short key id"),
        (["A4B469963BF863CC"], "short key id"),
        (["EB693B3035CD5710E231E123A4B469963BF863CG"], "not a full key fingerprint"),
        ([12], "a int"),
        (["x" * 500], "a str"),
    ],
)
def test_bad_fingerprints_are_refused(value, words):
    with pytest.raises(ModuleError, match=words):
        repo.check_repo_options({"repo_key_fingerprints": value})


def test_fingerprints_as_gpg_prints_them_are_taken():
    spaced = "EB69 3B30 35CD 5710 E231  E123 A4B4 6996 3BF8 63CC"
    assert repo.check_fingerprints([spaced, "0x" + FPR_A.lower()]) == ["EB693B3035CD5710E231E123A4B469963BF863CC", FPR_A]


def test_an_https_key_needs_a_fingerprint_or_a_checksum():
    with pytest.raises(ModuleError, match="without repo_key_fingerprints or repo_key_sha256"):
        repo.check_repo_options({"repo_key": "https://mirror.example/k.pub"})
    repo.check_repo_options({"repo_key": "https://mirror.example/k.pub", "repo_key_fingerprints": [FPR_A]})


def test_without_repo_key_nvidias_published_key_is_taken_from_the_tree():
    key = repo.key_plan({"source": "nvidia_repo"}, DEBIAN12, "x86_64", "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/", "")
    assert key.location.endswith("/debian12/x86_64/3bf863cc.pub") and key.published
    assert key.fingerprints == ("EB693B3035CD5710E231E123A4B469963BF863CC",)
    # A mirror that copies NVIDIA's tree: its copy of the key, NVIDIA's fingerprint.
    mirror = repo.key_plan({"source": "nvidia_repo"}, DEBIAN12, "x86_64", "file:///srv/mirror/debian12/x86_64/", "")
    assert mirror.location == "file:///srv/mirror/debian12/x86_64/3bf863cc.pub"
    # repo_key_fingerprints replaces the data's (a rotation the data does not know yet).
    rotated = repo.key_plan({"source": "nvidia_repo", "repo_key_fingerprints": [FPR_A]}, DEBIAN12, "x86_64", "file:///m/", "")
    assert rotated.fingerprints == (FPR_A,) and not rotated.published


def test_a_tree_without_a_known_key_names_repo_key_and_why_the_source_was_chosen(monkeypatch):
    monkeypatch.setattr(repo._compat, "NVIDIA_REPO_KEYS", {})
    with pytest.raises(ModuleError, match="source: auto chose NVIDIA's CUDA repository because it was asked.*repo_key_fingerprints.*source: distro"):
        repo.key_plan({"source": "auto"}, DEBIAN12, "x86_64", "https://x/", "it was asked")


def test_a_missing_key_file_on_a_mirror_says_what_to_do():
    key = repo.KeyPlan("file:///srv/mirror/3bf863cc.pub", (FPR_A,), "NVIDIA's published key for debian12 (3bf863cc.pub)", True)
    with pytest.raises(ModuleError, match="does not exist .*The mirror lacks NVIDIA's key file"):
        repo.load_key(key, {}, lambda url: b"", lambda path: None)


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
