"""devstack.config: what devstack takes from supabase/config.toml, and the stacks' overrides."""

from __future__ import annotations

from pathlib import Path

from devstack.config import DEFAULT_RATE_LIMITS, RAISED_RATE_LIMITS, REPO_ROOT, ProjectSettings, StackConfig
from devstack.gateway.process import GatewayProcess
from devstack.throwaway import throwaway_config


def test_the_projects_config_toml_is_read() -> None:
    settings = ProjectSettings.load(REPO_ROOT / "supabase")
    assert settings.max_rows == 1000
    assert settings.refresh_token_reuse_interval == 10
    assert dict(settings.rate_limits) == {"token_refresh": 150.0, "sign_in_sign_ups": 30.0}


def test_missing_keys_take_the_cli_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[auth]\nrefresh_token_reuse_interval = 0\n[auth.rate_limit]\ntoken_refresh = 7\n"
    )
    settings = ProjectSettings.load(tmp_path)
    assert settings.refresh_token_reuse_interval == 0
    assert dict(settings.rate_limits) == {**DEFAULT_RATE_LIMITS, "token_refresh": 7.0}
    assert ProjectSettings.load(tmp_path / "nowhere") == ProjectSettings()


def test_devstack_up_hands_config_toml_to_the_gateway_and_throwaway_stacks_raise_the_limits(tmp_path: Path) -> None:
    up = GatewayProcess(StackConfig(state_dir=tmp_path / "up"))
    assert up.settings()["rate_limits"] == {"token_refresh": 150.0, "sign_in_sign_ups": 30.0}
    assert up.settings()["refresh_token_reuse_interval"] == 10
    throwaway = GatewayProcess(throwaway_config(tmp_path / "throwaway"))
    assert throwaway.settings()["rate_limits"] == RAISED_RATE_LIMITS
    limited = GatewayProcess(throwaway_config(tmp_path / "limited", auth_rate_limits={"token_refresh": 1.0}))
    assert limited.settings()["rate_limits"] == {"token_refresh": 1.0, "sign_in_sign_ups": 30.0}
