"""The cache's encryption key: made once per install, kept in the OS keyring.

The key lives under service ``desktop-chat`` and an account name derived from the config directory, so
two installs (or a test's temporary config directory) never share a key. When no keyring backend works
(a headless session without a Secret Service, say) the key goes to a user-only file (mode 0600) in the
config directory and a warning is logged once. A key that is missing, unreadable or exposed is replaced
by a new one; entries written under the old key then fail to decrypt, and the cache namespace is wiped
(``RedisCacheStore.ensure_key_id``), which costs nothing but a refill.

The key itself is never logged; ``CacheSecret``'s repr leaves it out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from keyring.backend import KeyringBackend

from desktop_chat.secrets import SecretStore

__all__ = [
    "KEYRING_SERVICE",
    "CacheSecret",
    "KeyStorage",
    "LoadedSecret",
    "keyring_account",
    "load_cache_secret",
]

log = logging.getLogger(__name__)

KEYRING_SERVICE = "desktop-chat"
KEY_BYTES = 32
KEY_ID_BYTES = 4
_TEXT_PREFIX = "dc-cache-key-v1:"


@dataclass(frozen=True, slots=True)
class CacheSecret:
    """A 256-bit key and the short random id written into every envelope it seals."""

    key_id: bytes
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key_id) != KEY_ID_BYTES or len(self.key) != KEY_BYTES:
            raise ValueError("a cache secret is a 4-byte id and a 32-byte key")

    @classmethod
    def generate(cls) -> CacheSecret:
        return cls(key_id=secrets.token_bytes(KEY_ID_BYTES), key=secrets.token_bytes(KEY_BYTES))

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def to_text(self) -> str:
        return _TEXT_PREFIX + base64.b64encode(self.key_id + self.key).decode()

    @classmethod
    def from_text(cls, text: str) -> CacheSecret:
        """Parse ``to_text``'s output; ``ValueError`` for anything else."""
        if not text.startswith(_TEXT_PREFIX):
            raise ValueError("not a desktop-chat cache key")
        try:
            raw = base64.b64decode(text[len(_TEXT_PREFIX) :].strip(), validate=True)
        except binascii.Error:
            raise ValueError("cache key is not valid base64") from None
        return cls(key_id=raw[:KEY_ID_BYTES], key=raw[KEY_ID_BYTES:])


class KeyStorage(StrEnum):
    KEYRING = "keyring"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class LoadedSecret:
    """The key, where it is kept, and whether it was made just now (so the old cache is unreadable)."""

    secret: CacheSecret
    storage: KeyStorage
    created: bool


def keyring_account(config_dir: Path) -> str:
    """The keyring account of the install whose settings live in ``config_dir``."""
    digest = hashlib.sha256(str(config_dir.expanduser().resolve()).encode()).hexdigest()[:16]
    return f"cache-key:{digest}"


def load_cache_secret(config_dir: Path, *, backend: KeyringBackend | None = None) -> LoadedSecret:
    """Load this install's cache key, making and storing one when there is none.

    The key is kept by ``desktop_chat.secrets.SecretStore``: the OS keyring, or its user-only fallback
    file in ``config_dir`` (with the warning that store gives). Blocking (the keyring may talk to
    D-Bus); call it through ``asyncio.to_thread`` from async code.

    Args:
        config_dir: The app's config directory; names the keyring entry and holds the fallback file.
        backend: The keyring backend to use; the OS default when omitted.
    """
    account = keyring_account(config_dir)
    store = SecretStore(config_dir, backend=backend, service=KEYRING_SERVICE)
    stored = store.get(account)
    if stored is not None:
        try:
            return LoadedSecret(CacheSecret.from_text(stored), _storage(store), created=False)
        except ValueError:
            log.warning("The stored cache key is unreadable; making a new one (the cache is rebuilt)")
    secret = CacheSecret.generate()
    store.set(account, secret.to_text())
    log.info("Made a new cache key (id %s), kept in the %s", secret.key_id_hex, _storage(store).value)
    return LoadedSecret(secret, _storage(store), created=True)


def _storage(store: SecretStore) -> KeyStorage:
    return KeyStorage.KEYRING if store.uses_keyring else KeyStorage.FILE
