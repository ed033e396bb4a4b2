# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: mlinfra.mlhost contributors
"""The one error type of mlinfra.mlhost's modules, and the masking of credentials in what they print.

PRIVATE to the collection: no compatibility promise outside it.

A module refuses or fails by raising ``ModuleError(msg, **details)``; the one entry
(``_module.run_module``) turns it into ``fail_json`` with the commands run. Every text that
leaves a module (messages, details, warnings, commands) goes through ``mask`` first, so a
URL's user-info (``https://user:token@host/``) and its query string (signed download links)
are never printed, whichever option or file they came from.
"""

from __future__ import annotations

import re
import typing as t

MASK = "***"

# scheme://user-info@ : the user-info is a credential (pip, uv, conda and NVIDIA mirrors all take one there).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@'\"<>]*)@")
# ?query of a URL: presigned download links (S3, GCS, Artifactory) carry their token there.
_QUERY = re.compile(r"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s?#'\"<>]+)\?(?P<query>[^\s#'\"<>]+)")
# KEY=value pairs with a secret-looking name (proxy and token variables echoed by a tool).
_SECRET_ASSIGNMENT = re.compile(r"(?i)\b(?P<key>[A-Z0-9_]*(?:TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|AUTH)[A-Z0-9_]*)=(?P<value>[^\s'\"]+)")


class ModuleError(Exception):
    """A refusal or failure: ``msg`` names the problem and the fix, ``details`` go into the result as they are."""

    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self) -> str:
        return self.msg


def mask_text(text: str) -> str:
    """``text`` with every URL's user-info and query string, and secret-named assignments, replaced by ***."""
    if not text or ("://" not in text and "=" not in text):
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _QUERY.sub(lambda m: f"{m.group('url')}?{MASK}", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group('key')}={MASK}", text)


def mask_url(url: str) -> str:
    """One URL as it may be shown: ``https://***@host/path?***``."""
    return mask_text(url)


def mask(value: t.Any) -> t.Any:
    """``mask_text`` applied to every string inside ``value`` (dicts, lists and tuples walked; keys too)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {mask(k): mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask(v) for v in value)
    return value
