"""Small secrets (a refresh token, the cache key) in the OS keyring, or a user-only file as fallback.

Windows' credential store caps a secret at 2,560 bytes, so only short values go here: the refresh token
(never the whole session) and a 32-byte key. When no keyring backend works (a headless Linux box without
Secret Service, say), secrets go to a JSON file that only the user can read, and a warning says so once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

import keyring
import keyring.backends.null
import keyring.errors
from keyring.backend import KeyringBackend

log = logging.getLogger(__name__)

SERVICE = "desktop-chat"
FALLBACK_FILE = "secrets.json"


def _usable(backend: KeyringBackend) -> bool:
    # The "fail" and "null" backends have priority 0 or less; chainer with nothing behind it likewise.
    try:
        return float(backend.priority) > 0
    except Exception:  # a backend whose priority probe itself fails is not usable
        return False


class SecretStore:
    """Get, set and delete named secrets of one application.

    Args:
        fallback_dir: Where the user-only fallback file lives (the app's config directory).
        backend: A keyring backend to use instead of the system's (tests pass an in-memory one).
        service: The keyring service name.
    """

    def __init__(self, fallback_dir: Path, backend: KeyringBackend | None = None, service: str = SERVICE) -> None:
        self._service = service
        self._fallback_path = fallback_dir / FALLBACK_FILE
        if backend is None:
            chosen = keyring.get_keyring()
            usable = _usable(chosen)
        else:
            # Chosen on purpose (tests, a configured backend): used until it fails. Only the null backend,
            # which silently drops what it is given, is never used.
            chosen = backend
            usable = not isinstance(backend, keyring.backends.null.Keyring)
        self._backend: KeyringBackend | None = chosen if usable else None
        self._warned = False

    @property
    def uses_keyring(self) -> bool:
        """Whether secrets currently go to the OS keyring (False: the user-only file)."""
        return self._backend is not None

    @property
    def location(self) -> str:
        """Where secrets are kept, for diagnostics (never the secrets themselves)."""
        if self._backend is not None:
            return f"keyring ({type(self._backend).__module__}.{type(self._backend).__name__})"
        return f"file {self._fallback_path}"

    def get(self, name: str) -> str | None:
        if self._backend is not None:
            try:
                return self._backend.get_password(self._service, name)
            except keyring.errors.KeyringError as error:
                self._switch_to_file(error)
        return self._read_file().get(name)

    def set(self, name: str, value: str) -> None:
        if self._backend is not None:
            try:
                self._backend.set_password(self._service, name, value)
                return
            except keyring.errors.KeyringError as error:
                self._switch_to_file(error)
        data = self._read_file()
        data[name] = value
        self._write_file(data)

    def delete(self, name: str) -> None:
        if self._backend is not None:
            try:
                with contextlib.suppress(keyring.errors.PasswordDeleteError):
                    self._backend.delete_password(self._service, name)
                return
            except keyring.errors.KeyringError as error:
                self._switch_to_file(error)
        data = self._read_file()
        if data.pop(name, None) is not None:
            self._write_file(data)

    # --- fallback file -----------------------------------------------------------------------------
    def _switch_to_file(self, error: Exception) -> None:
        log.warning("The OS keyring failed (%s); using the fallback file instead", type(error).__name__)
        self._backend = None

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("No OS keyring is available; secrets are kept in %s, readable only by you", self._fallback_path)

    def _read_file(self) -> dict[str, str]:
        self._warn_once()
        try:
            info = self._fallback_path.stat()
        except FileNotFoundError:
            return {}
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Someone else could have read it: what it holds protects nothing any more. Start over.
            log.warning("The secrets file %s is readable by others; its secrets are discarded", self._fallback_path)
            return {}
        try:
            raw = json.loads(self._fallback_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("The secrets file %s is unreadable; starting a new one", self._fallback_path)
            return {}
        if not isinstance(raw, dict):
            return {}
        return {str(key): str(value) for key, value in raw.items()}

    def _write_file(self, data: dict[str, str]) -> None:
        directory = self._fallback_path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Write a user-only temporary file and rename it over the old one: never a moment where the
        # secrets are half written or readable by others.
        fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._fallback_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
