# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The primary keys of an OpenPGP public key file: fingerprints and self-signature hashes.

PRIVATE to the collection: no compatibility promise outside it.

Enough of RFC 4880 / RFC 9580 to check a repository key before apt or dnf trusts it,
without gpg on the host (a minimal Debian has only gpgv): the armor is undone (its
CRC-24 checked), the packets are walked, and for each public-key packet (tag 6) the
fingerprint is computed as the RFC says (v4: SHA-1 over 0x99, a two-octet length and
the packet body; v5 and v6: SHA-256 over 0x9a/0x9b, a four-octet length and the body).
The hash algorithm of each signature that follows a key's user IDs and subkeys is noted,
so a key bound only by SHA-1 signatures (which Debian 13's apt rejects from 2026-02-01)
can be refused before it is written. No signature is verified here: apt and dnf verify
the repository's signatures with the key; this only makes sure the key is the one meant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import typing as t

MAX_KEY_BYTES = 1024 * 1024  # a repository key file is a few KB; a keyring of many keys a few hundred
PUBLIC_KEY, PUBLIC_SUBKEY, SIGNATURE, USER_ID = 6, 14, 2, 13
# Self-signature types: certifications of a user ID (0x10-0x13), direct key (0x1f), subkey binding (0x18).
BINDING_TYPES = frozenset((0x10, 0x11, 0x12, 0x13, 0x18, 0x1F))
HASHES = {1: "MD5", 2: "SHA-1", 3: "RIPEMD-160", 8: "SHA-256", 9: "SHA-384", 10: "SHA-512", 11: "SHA-224", 12: "SHA3-256", 14: "SHA3-512"}
WEAK_HASHES = frozenset(("MD5", "SHA-1", "RIPEMD-160"))


class KeyError_(ValueError):
    """The data is not an OpenPGP public key (the message says why)."""


class Key(t.NamedTuple):
    fingerprint: str            # upper-case hex, 40 digits (v4) or 64 (v5, v6)
    version: int
    user_ids: tuple[str, ...]
    binding_hashes: tuple[str, ...]  # hash algorithm of each self-signature seen, in order

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:] if self.version == 4 else self.fingerprint[:16]

    @property
    def weak_bindings_only(self) -> bool:
        """Every binding signature uses a hash apt's and gpg's current policies reject (SHA-1, MD5, RIPEMD-160)."""
        return bool(self.binding_hashes) and all(h in WEAK_HASHES for h in self.binding_hashes)


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for dummy in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


_ARMOR = re.compile(rb"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(.*?)-----END PGP PUBLIC KEY BLOCK-----", re.S)


def dearmor(data: bytes) -> bytes:
    """The binary packets of every armored public key block in ``data`` (CRC-24 checked), or ``data`` if not armored."""
    blocks = _ARMOR.findall(data)
    if not blocks:
        if data.lstrip().startswith(b"-----BEGIN"):
            raise KeyError_("it is armored, but not as a PGP PUBLIC KEY BLOCK (a private key, a signature or a message?)")
        return data
    out = b""
    for block in blocks:
        lines = block.replace(b"\r", b"").split(b"\n")
        # Armor headers ("Version: ..., Comment: ...") end at the first blank line.
        if b"" in lines and any(b": " in line for line in lines[: lines.index(b"")]):
            lines = lines[lines.index(b"") + 1:]
        body = [line.strip() for line in lines if line.strip()]
        checksum = None
        if body and body[-1].startswith(b"="):
            checksum = body.pop()[1:]
        try:
            packets = base64.b64decode(b"".join(body), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyError_(f"its armor is not valid base64 ({exc})") from exc
        if checksum is not None:
            try:
                want = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
            except (binascii.Error, ValueError) as exc:
                raise KeyError_("its armor checksum is not valid base64") from exc
            if want != _crc24(packets):
                raise KeyError_("its armor checksum does not match its contents (the file is damaged)")
        out += packets
    return out


def packets(data: bytes) -> t.Iterator[tuple[int, bytes]]:
    """(tag, body) of each packet, old and new formats, partial lengths refused (keys never use them)."""
    pos, end = 0, len(data)
    while pos < end:
        first = data[pos]
        if not first & 0x80:
            raise KeyError_(f"byte {pos} is not the start of an OpenPGP packet")
        pos += 1
        if first & 0x40:  # new format
            tag = first & 0x3F
            if pos >= end:
                raise KeyError_("it ends inside a packet header")
            octet = data[pos]
            if octet < 192:
                length, pos = octet, pos + 1
            elif octet < 224:
                if pos + 1 >= end:
                    raise KeyError_("it ends inside a packet header")
                length, pos = ((octet - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif octet == 255:
                if pos + 5 > end:
                    raise KeyError_("it ends inside a packet header")
                length, pos = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
            else:
                raise KeyError_("it uses partial packet lengths, which no public key has")
        else:  # old format
            tag = (first >> 2) & 0x0F
            kind = first & 0x03
            if kind == 3:
                raise KeyError_("it uses an indeterminate packet length, which no public key has")
            size = (1, 2, 4)[kind]
            if pos + size > end:
                raise KeyError_("it ends inside a packet header")
            length, pos = int.from_bytes(data[pos:pos + size], "big"), pos + size
        if pos + length > end:
            raise KeyError_("it ends inside a packet (the file is cut short)")
        yield tag, data[pos:pos + length]
        pos += length


def fingerprint_of(body: bytes) -> tuple[int, str]:
    """(version, fingerprint) of a public-key packet body."""
    if not body:
        raise KeyError_("it holds an empty public-key packet")
    version = body[0]
    if version in (2, 3):
        raise KeyError_(f"it holds a version {version} key (MD5 fingerprints, long obsolete): no repository trusts one")
    if version == 4:
        return 4, hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()  # nosec B324 - RFC 4880's v4 fingerprint
    if version in (5, 6):
        prefix = b"\x9a" if version == 5 else b"\x9b"
        return version, hashlib.sha256(prefix + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    raise KeyError_(f"it holds a key of unknown version {version}")


def read_keys(data: bytes) -> list[Key]:
    """The primary keys in a public key file (armored or binary), in order."""
    if not isinstance(data, bytes) or not data.strip():
        raise KeyError_("it is empty")
    if len(data) > MAX_KEY_BYTES:
        raise KeyError_(f"it is {len(data)} bytes long; a public key file is at most {MAX_KEY_BYTES}")
    binary = dearmor(data)
    keys: list[Key] = []
    current: dict[str, t.Any] | None = None
    for tag, body in packets(binary):
        if tag == PUBLIC_KEY:
            if current:
                keys.append(Key(current["fp"], current["v"], tuple(current["uids"]), tuple(current["hashes"])))
            version, fpr = fingerprint_of(body)
            current = {"fp": fpr, "v": version, "uids": [], "hashes": []}
        elif tag in (5, 7):
            raise KeyError_("it holds a secret key: give the public key only")
        elif current is None:
            raise KeyError_("it does not start with a public-key packet")
        elif tag == USER_ID:
            current["uids"].append(body[:256].decode("utf-8", "replace"))
        elif tag == SIGNATURE and len(body) >= 4 and body[0] in (4, 5, 6) and body[1] in BINDING_TYPES:
            current["hashes"].append(HASHES.get(body[3], f"hash {body[3]}"))
        elif tag == SIGNATURE and len(body) >= 7 and body[0] == 3 and body[2] in BINDING_TYPES:
            current["hashes"].append(HASHES.get(body[16] if len(body) > 16 else -1, "unknown"))
    if current:
        keys.append(Key(current["fp"], current["v"], tuple(current["uids"]), tuple(current["hashes"])))
    if not keys:
        raise KeyError_("it holds no public key")
    return keys


FINGERPRINT = re.compile(r"(?:[0-9A-F]{40}|[0-9A-F]{64})")


def normalize_fingerprint(value: str) -> str | None:
    """Upper-case hex without spaces (gpg prints it in groups), or None when it is no full fingerprint."""
    compact = re.sub(r"[\s:]", "", value or "").upper()
    if compact.startswith("0X"):
        compact = compact[2:]
    return compact if FINGERPRINT.fullmatch(compact) else None


def grouped(fingerprint: str) -> str:
    """gpg's way of showing a fingerprint: groups of four."""
    return " ".join(fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4))
