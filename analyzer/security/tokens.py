"""The token file (``CHAINOTEL_AUTH_FILE``) and constant-time token checks.

File format (YAML, a list of entries)::

    - name: collector-prod          # recorded with registry changes and in logs, never the token
      token_sha256: "5e884898da28..."  # hex SHA-256 of the token (``printf %s "$TOKEN" | sha256sum``)
      scopes: [ingest]
    - name: dev
      token: s3cret                  # plain token: for development only, logged as a warning
      scopes: [read, admin]

Scopes: ``ingest`` (OTLP export), ``read`` (GET of the API), ``admin`` (registry writes, alert
resolution). A token has exactly the scopes listed; ``admin`` does not imply ``read``.

Checking a presented token hashes it once (SHA-256) and compares the digest with *every* entry by
:func:`hmac.compare_digest`, so the time taken does not depend on which entry (if any) matches or
on how many leading bytes agree.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


class Scope(str, Enum):
    """What a token may do (module docstring)."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


class AuthFileError(ValueError):
    """The token file is missing, unreadable or malformed; the message names the entry and field."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the token entry's ``name`` and its ``scopes``."""

    name: str
    scopes: frozenset[Scope]


_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")


def sha256_hex(token: str) -> str:
    """Lower-case hex SHA-256 of ``token`` encoded as UTF-8 (what ``token_sha256`` holds)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenSet:
    """The tokens of one auth file. :meth:`authenticate` → :class:`Principal` or ``None``."""

    def __init__(self, entries: list[tuple[str, bytes, frozenset[Scope]]]):
        self._entries = entries  # (name, sha256 digest bytes, scopes)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> list[str]:
        """The entries' names, in file order."""
        return [name for name, _, _ in self._entries]

    def authenticate(self, token: str) -> Principal | None:
        """The entry whose token is ``token``, compared in constant time against every entry."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = None
        for name, expected, scopes in self._entries:
            if hmac.compare_digest(digest, expected) and found is None:
                found = Principal(name, scopes)
        return found

    @classmethod
    def parse(cls, text: str, source: str = "auth file") -> TokenSet:
        """Entries from the YAML ``text`` (module docstring). Raises :class:`AuthFileError` naming
        the entry (by position and name) and the field."""
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AuthFileError(f"{source}: not valid YAML: {exc}") from None
        if not isinstance(doc, list) or not doc:
            raise AuthFileError(f"{source}: expected a non-empty YAML list of {{name, token_sha256, scopes}} entries")
        entries, names, digests = [], set(), set()
        for i, item in enumerate(doc):
            where = f"{source}: entry {i + 1}"
            if not isinstance(item, dict):
                raise AuthFileError(f"{where}: expected a mapping with name, token_sha256 (or token) and scopes")
            unknown = set(item) - {"name", "token_sha256", "token", "scopes"}
            if unknown:
                raise AuthFileError(f"{where}: unknown field(s) {sorted(unknown)}")
            name = item.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise AuthFileError(f"{where}: name must be 1-128 characters of letters, digits and ._@:-")
            where = f"{where} ({name})"
            if name in names:
                raise AuthFileError(f"{where}: duplicate name")
            has_hash, has_plain = "token_sha256" in item, "token" in item
            if has_hash == has_plain:
                raise AuthFileError(f"{where}: give exactly one of token_sha256 (hex SHA-256) or token (plain)")
            if has_hash:
                value = item["token_sha256"]
                if not isinstance(value, str):  # YAML read an unquoted all-digit digest as a number
                    raise AuthFileError(f"{where}: token_sha256 must be a string: quote the 64 hex digits")
                if not _HEX64.match(value):
                    raise AuthFileError(f"{where}: token_sha256 must be 64 hex digits (sha256sum of the token)")
                digest = bytes.fromhex(value)
            else:
                value = item["token"]
                if not isinstance(value, str) or len(value) < 16:
                    raise AuthFileError(f"{where}: token must be a string of at least 16 characters")
                log.warning("%s: plain token for %r; store its token_sha256 instead outside development", source, name)
                digest = hashlib.sha256(value.encode("utf-8")).digest()
            if digest in digests:
                raise AuthFileError(f"{where}: the same token as another entry")
            scopes = item.get("scopes")
            if not isinstance(scopes, list) or not scopes:
                raise AuthFileError(f"{where}: scopes must be a non-empty list of ingest, read, admin")
            try:
                scope_set = frozenset(Scope(s) for s in scopes)
            except ValueError:
                raise AuthFileError(f"{where}: scopes {scopes!r}: each must be one of ingest, read, admin") from None
            names.add(name)
            digests.add(digest)
            entries.append((name, digest, scope_set))
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> TokenSet:
        """:meth:`parse` the file at ``path``; :class:`AuthFileError` if it cannot be read."""
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthFileError(f"cannot read auth file {path}: {exc}") from None
        return cls.parse(text, str(path))
