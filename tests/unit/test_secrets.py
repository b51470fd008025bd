"""SecretStore: the keyring when there is one, a user-only file with a warning when there is not."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import keyring.errors
import pytest

from desktop_chat.secrets import SecretStore
from tests.keyrings import MemoryKeyring


class BrokenKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("locked")


def test_uses_the_keyring_when_it_works(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    store = SecretStore(tmp_path, backend=backend)
    store.set("token", "abc")
    assert store.get("token") == "abc"
    assert backend.values == {("desktop-chat", "token"): "abc"}
    store.delete("token")
    store.delete("token")  # deleting twice is fine
    assert store.get("token") is None
    assert not (tmp_path / "secrets.json").exists()


def test_falls_back_to_a_user_only_file_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import keyring.backends.fail

    store = SecretStore(tmp_path / "cfg", backend=keyring.backends.fail.Keyring())
    with caplog.at_level(logging.WARNING, logger="desktop_chat.secrets"):
        store.set("token", "abc")
        store.set("other", "xyz")
    path = tmp_path / "cfg" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable only by you" in caplog.text
    assert "abc" not in caplog.text
    again = SecretStore(tmp_path / "cfg", backend=keyring.backends.fail.Keyring())
    assert again.get("token") == "abc"
    again.delete("token")
    assert again.get("token") is None
    assert again.get("other") == "xyz"
    assert store.location.startswith("file ")


def test_a_keyring_that_fails_at_runtime_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SecretStore(tmp_path, backend=BrokenKeyring())
    with caplog.at_level(logging.WARNING, logger="desktop_chat.secrets"):
        store.set("token", "abc")
    assert store.get("token") == "abc"
    assert "keyring failed" in caplog.text


def test_a_corrupt_file_is_replaced_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import keyring.backends.fail

    (tmp_path / "secrets.json").write_text("{not json")
    store = SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())
    with caplog.at_level(logging.WARNING, logger="desktop_chat.secrets"):
        assert store.get("token") is None
        store.set("token", "abc")
    assert store.get("token") == "abc"


def test_a_fallback_file_readable_by_others_is_discarded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import keyring.backends.fail

    store = SecretStore(tmp_path, backend=keyring.backends.fail.Keyring())
    store.set("token", "abc")
    (tmp_path / "secrets.json").chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="desktop_chat.secrets"):
        assert store.get("token") is None
    assert "readable by others" in caplog.text
