"""The cache key: kept in the keyring, else in a user-only file; replaced when lost or exposed."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked

from desktop_chat.cache.secret import (
    KEYRING_SERVICE,
    CacheSecret,
    KeyStorage,
    keyring_account,
    load_cache_secret,
)
from desktop_chat.secrets import FALLBACK_FILE


class DictKeyring(KeyringBackend):
    """A keyring backend keeping passwords in a dict: the keyring library's own extension point."""

    priority = -1  # type: ignore[assignment]  # never chosen by keyring.get_keyring()

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


class LockedKeyring(DictKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("locked")


def test_a_new_key_is_made_once_and_kept_in_the_keyring(tmp_path: Path) -> None:
    backend = DictKeyring()
    first = load_cache_secret(tmp_path, backend=backend)
    assert (first.storage, first.created) == (KeyStorage.KEYRING, True)
    assert list(backend.passwords) == [(KEYRING_SERVICE, keyring_account(tmp_path))]
    again = load_cache_secret(tmp_path, backend=backend)
    assert (again.secret, again.created) == (first.secret, False)
    assert not (tmp_path / FALLBACK_FILE).exists()


def test_each_install_has_its_own_key(tmp_path: Path) -> None:
    backend = DictKeyring()
    one = load_cache_secret(tmp_path / "one", backend=backend)
    two = load_cache_secret(tmp_path / "two", backend=backend)
    assert one.secret != two.secret
    assert len(backend.passwords) == 2


def test_an_unreadable_keyring_entry_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = DictKeyring()
    backend.passwords[(KEYRING_SERVICE, keyring_account(tmp_path))] = "garbage"
    loaded = load_cache_secret(tmp_path, backend=backend)
    assert loaded.created
    assert CacheSecret.from_text(backend.passwords[(KEYRING_SERVICE, keyring_account(tmp_path))]) == loaded.secret
    assert "unreadable" in caplog.text


@pytest.mark.parametrize("backend", [LockedKeyring(), None], ids=["locked", "os-default"])
def test_without_a_working_keyring_the_key_goes_to_a_user_only_file(
    tmp_path: Path, backend: KeyringBackend | None, caplog: pytest.LogCaptureFixture
) -> None:
    # Under pytest the OS default is keyring's "fail" backend (tests/conftest.py), like a headless session.
    with caplog.at_level(logging.WARNING):
        first = load_cache_secret(tmp_path / "config", backend=backend)
    assert (first.storage, first.created) == (KeyStorage.FILE, True)
    path = tmp_path / "config" / FALLBACK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "No OS keyring is available" in caplog.text or "keyring failed" in caplog.text
    again = load_cache_secret(tmp_path / "config", backend=backend)
    assert (again.secret, again.created) == (first.secret, False)


def test_an_exposed_key_file_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = load_cache_secret(tmp_path, backend=LockedKeyring())
    os.chmod(tmp_path / FALLBACK_FILE, 0o644)
    second = load_cache_secret(tmp_path, backend=LockedKeyring())
    assert second.created and second.secret != first.secret
    assert "readable by others" in caplog.text
    assert stat.S_IMODE((tmp_path / FALLBACK_FILE).stat().st_mode) == 0o600


def test_a_garbled_key_file_is_replaced(tmp_path: Path) -> None:
    account = keyring_account(tmp_path)
    (tmp_path / FALLBACK_FILE).write_text(json.dumps({account: "dc-cache-key-v1:not base64!"}))
    os.chmod(tmp_path / FALLBACK_FILE, 0o600)
    loaded = load_cache_secret(tmp_path, backend=LockedKeyring())
    assert loaded.created
    stored = json.loads((tmp_path / FALLBACK_FILE).read_text())[account]
    assert CacheSecret.from_text(stored) == loaded.secret


def test_the_key_never_appears_in_logs_or_repr(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        loaded = load_cache_secret(tmp_path, backend=LockedKeyring())
        load_cache_secret(tmp_path, backend=DictKeyring())
    text = loaded.secret.to_text()
    assert text not in caplog.text and loaded.secret.key.hex() not in caplog.text
    assert loaded.secret.key.hex() not in repr(loaded) and "key=" not in repr(loaded.secret).replace("key_id=", "")


@pytest.mark.parametrize("text", ["", "dc-cache-key-v1:", "dc-cache-key-v1:AAAA", "other:" + "A" * 48])
def test_malformed_key_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"cache key|cache secret"):
        CacheSecret.from_text(text)
