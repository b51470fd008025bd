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
import os
import secrets
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend

__all__ = [
    "KEYRING_SERVICE",
    "KEY_FILE_NAME",
    "CacheSecret",
    "KeyStorage",
    "LoadedSecret",
    "keyring_account",
    "load_cache_secret",
]

log = logging.getLogger(__name__)

KEYRING_SERVICE = "desktop-chat"
KEY_FILE_NAME = "cache-key"
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

    Blocking (the keyring may talk to D-Bus); call it through ``asyncio.to_thread`` from async code.

    Args:
        config_dir: The app's config directory; names the keyring entry and holds the fallback file.
        backend: The keyring backend to use; the OS default when omitted.
    """
    account = keyring_account(config_dir)
    chosen = backend if backend is not None else keyring.get_keyring()
    try:
        return _from_keyring(chosen, account)
    # Any backend failure (no backend, locked, D-Bus errors that backends do not wrap) means: use the file.
    except Exception as error:
        log.warning(
            "No working keyring backend (%s); the cache key is kept in a user-only file in %s",
            type(error).__name__,
            config_dir,
        )
    return _from_file(config_dir / KEY_FILE_NAME)


def _from_keyring(backend: KeyringBackend, account: str) -> LoadedSecret:
    stored = backend.get_password(KEYRING_SERVICE, account)
    if stored is not None:
        try:
            return LoadedSecret(CacheSecret.from_text(stored), KeyStorage.KEYRING, created=False)
        except ValueError:
            log.warning("The cache key in the keyring is unreadable; making a new one (the cache is rebuilt)")
    secret = CacheSecret.generate()
    backend.set_password(KEYRING_SERVICE, account, secret.to_text())
    log.info("Made a new cache key (id %s) and stored it in the keyring", secret.key_id_hex)
    return LoadedSecret(secret, KeyStorage.KEYRING, created=True)


def _from_file(path: Path) -> LoadedSecret:
    try:
        info = path.stat()
    except FileNotFoundError:
        pass
    else:
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Someone else could have read it: the key no longer protects anything.
            log.warning("The cache key file %s is readable by others; replacing the key", path)
        else:
            try:
                return LoadedSecret(CacheSecret.from_text(path.read_text()), KeyStorage.FILE, created=False)
            except (OSError, ValueError, UnicodeDecodeError):
                log.warning("The cache key file %s is unreadable; making a new key (the cache is rebuilt)", path)
    secret = CacheSecret.generate()
    _write_private(path, secret.to_text() + "\n")
    log.info("Made a new cache key (id %s) in %s", secret.key_id_hex, path)
    return LoadedSecret(secret, KeyStorage.FILE, created=True)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that it is never, even briefly, readable by anyone but us."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
