"""Settings: the user's settings file sits between the environment and the defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_chat.config import (
    Settings,
    env_overrides,
    read_user_settings,
    save_user_settings,
    server_chosen,
    user_settings_path,
)
from desktop_chat.errors import LocalStorageError


def test_the_settings_file_overrides_defaults(tmp_path: Path) -> None:
    save_user_settings(tmp_path, {"cache_ttl_recent": 42, "theme": "dark"})
    settings = Settings(config_dir=tmp_path)
    assert settings.cache_ttl_recent == 42
    assert settings.theme == "dark"
    assert settings.cache_ttl_chat == 1800


def test_environment_variables_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_user_settings(tmp_path, {"cache_ttl_recent": 42})
    monkeypatch.setenv("DESKTOP_CHAT_CACHE_TTL_RECENT", "7")
    assert Settings(config_dir=tmp_path).cache_ttl_recent == 7
    assert "cache_ttl_recent" in env_overrides()


def test_the_config_dir_from_the_environment_locates_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_user_settings(tmp_path, {"log_level": "DEBUG"})
    monkeypatch.setenv("DESKTOP_CHAT_CONFIG_DIR", str(tmp_path))
    assert Settings().log_level == "DEBUG"


def test_saving_merges_with_what_is_there(tmp_path: Path) -> None:
    save_user_settings(tmp_path, {"cache_ttl_recent": 42})
    save_user_settings(tmp_path, {"redis_url": None})
    assert read_user_settings(tmp_path) == {"cache_ttl_recent": 42, "redis_url": None}


def test_directories_cannot_be_saved_but_the_public_project_key_is_remembered(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data_dir"):
        save_user_settings(tmp_path, {"data_dir": "/elsewhere"})
    # The anon (publishable) key is public by design; the sign-in window remembers it with the address.
    save_user_settings(tmp_path, {"supabase_url": "https://abc.supabase.co", "supabase_anon_key": "sb_publishable_x"})
    settings = Settings(config_dir=tmp_path)
    assert settings.supabase_anon_key.get_secret_value() == "sb_publishable_x"
    assert server_chosen(settings) and not server_chosen(Settings(config_dir=tmp_path / "elsewhere"))


def test_a_broken_file_is_ignored_and_unknown_keys_dropped(tmp_path: Path) -> None:
    user_settings_path(tmp_path).write_text("{not json")
    assert Settings(config_dir=tmp_path).cache_ttl_recent == 300
    user_settings_path(tmp_path).write_text(json.dumps({"data_dir": "/elsewhere", "theme": "light"}))
    assert read_user_settings(tmp_path) == {"theme": "light"}


def test_an_unwritable_directory_is_a_local_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LocalStorageError, match="Cannot save the settings"):
        save_user_settings(blocker / "sub", {"theme": "dark"})
