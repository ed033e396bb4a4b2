# SPDX-License-Identifier: GPL-3.0-or-later
"""The OpenPGP key reader: fingerprints as GnuPG computes them, self-signature hashes, damaged and hostile files."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.mlinfra.mlhost.plugins.module_utils import _openpgp as pgp
from mlhost_testlib import FIXTURES

# Fingerprints printed by gpg --with-colons when the test keys were made (fixtures/openpgp/README.md).
GPG_PRINTED = {
    "test-rsa3072-sha512.asc": ["56D39643D5238D326B02F98B9655AE0657EFF1E2"],
    "test-ed25519-sha1.gpg": ["C56768DDEC16F151F8C97254093B74097F6210A2"],
    "test-three-keys.gpg": ["56D39643D5238D326B02F98B9655AE0657EFF1E2", "C56768DDEC16F151F8C97254093B74097F6210A2",
                            "D77CB5A777DD6EB68DC6461774C6571A5FE0B7C3"],
}


@pytest.mark.parametrize("name", sorted(GPG_PRINTED))
def test_fingerprints_are_the_ones_gpg_printed(name):
    keys = pgp.read_keys((FIXTURES / "openpgp" / name).read_bytes())
    assert [k.fingerprint for k in keys] == GPG_PRINTED[name]
    assert all(k.version == 4 and k.key_id == k.fingerprint[-16:] for k in keys)


def test_self_signature_hashes_and_user_ids_are_read():
    a, b, c = pgp.read_keys((FIXTURES / "openpgp/test-three-keys.gpg").read_bytes())
    assert a.user_ids == ("A test <a@x>",) and a.binding_hashes == ("SHA-512",) and not a.weak_bindings_only
    assert b.binding_hashes == ("SHA-1",) and b.weak_bindings_only
    assert "SHA-1" not in c.binding_hashes and not c.weak_bindings_only


def test_armor_with_headers_crlf_and_several_blocks_is_read():
    armored = (FIXTURES / "openpgp/test-rsa3072-sha512.asc").read_bytes()
    with_header = armored.replace(b"-----\n", b"-----\nComment: a mirror's note\n", 1)
    assert [k.fingerprint for k in pgp.read_keys(with_header.replace(b"\n", b"\r\n"))] == GPG_PRINTED["test-rsa3072-sha512.asc"]
    assert len(pgp.read_keys(armored + b"\n" + armored)) == 2


def test_a_damaged_armor_checksum_is_refused():
    armored = (FIXTURES / "openpgp/test-rsa3072-sha512.asc").read_bytes().decode()
    lines = armored.splitlines()
    crc = next(i for i, line in enumerate(lines) if line.startswith("="))
    body = lines[crc - 1]
    lines[crc - 1] = ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(pgp.KeyError_, match="checksum does not match|not valid base64|not the start|cut short"):
        pgp.read_keys("\n".join(lines).encode())


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x00" * 64, "not the start of an OpenPGP packet"),
        (b"\xff\xff\xff\xff", "partial packet lengths|cut short|inside a packet header"),
        (b"\xc6", "inside a packet header"),
        (b"\x99\x00\x05\x04abc", "cut short"),
        (b"\x99\x00\x01\x03", "version 3 key"),
        (b"\x99\x00\x01\x09", "unknown version 9"),
        (b"\x95\x00\x01\x04", "secret key"),
        (b"\xb4\x00\x03abc", "does not start with a public-key packet"),
        (b"-----BEGIN PGP PRIVATE KEY BLOCK-----\nabc\n-----END PGP PRIVATE KEY BLOCK-----\n", "not as a PGP PUBLIC KEY BLOCK"),
        (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n", "not valid base64"),
        (b"<!DOCTYPE html><html>404 Not Found</html>", "not the start"),
        (b"\x99" + b"\x00" * (pgp.MAX_KEY_BYTES + 1), "at most"),
    ],
)
def test_hostile_and_damaged_files_are_refused_with_the_reason(data, words):
    with pytest.raises(pgp.KeyError_, match=words):
        pgp.read_keys(data)


def test_a_v6_key_gets_a_sha256_fingerprint():
    # A v6 public-key packet body (RFC 9580 5.5.2.3): version, creation time, algorithm 27 (Ed25519), key length, key.
    body = bytes([6]) + (1700000000).to_bytes(4, "big") + bytes([27]) + (32).to_bytes(4, "big") + bytes(range(32))
    packet = bytes([0xC0 | 6, len(body)]) + body
    (key,) = pgp.read_keys(packet)
    assert key.version == 6 and len(key.fingerprint) == 64 and key.key_id == key.fingerprint[:16]
    import hashlib
    assert key.fingerprint == hashlib.sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest().upper()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("EB69 3B30 35CD 5710 E231  E123 A4B4 6996 3BF8 63CC", "EB693B3035CD5710E231E123A4B469963BF863CC"),
        ("0xeb693b3035cd5710e231e123a4b469963bf863cc", "EB693B3035CD5710E231E123A4B469963BF863CC"),
        ("3BF863CC", None),
        ("A4B469963BF863CC", None),
        ("", None),
        ("EB693B3035CD5710E231E123A4B469963BF863C\u0421", None),  # a Cyrillic letter that looks like C
    ],
)
def test_fingerprints_are_normalized_and_short_ids_refused(value, expected):
    assert pgp.normalize_fingerprint(value) == expected


def test_grouped_is_gpgs_display():
    assert pgp.grouped("EB693B3035CD5710E231E123A4B469963BF863CC") == "EB69 3B30 35CD 5710 E231 E123 A4B4 6996 3BF8 63CC"


def test_the_reader_never_hangs_or_crashes_on_random_bytes():
    import random
    rng = random.Random(20261202)
    for dummy in range(300):
        data = bytes(rng.randrange(256) for dummy in range(rng.randrange(1, 300)))
        try:
            pgp.read_keys(data)
        except pgp.KeyError_:
            pass
    armored = base64.b64encode(bytes(rng.randrange(256) for dummy in range(200)))
    with pytest.raises(pgp.KeyError_):
        pgp.read_keys(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + armored + b"\n-----END PGP PUBLIC KEY BLOCK-----\n")
