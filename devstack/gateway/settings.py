"""Gateway settings, read from the JSON file that ``GatewayProcess`` writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    db_url: str  # superuser: auth admin work and logical decoding
    authenticator_url: str  # the role REST requests run as before switching to anon/authenticated
    jwt_secret: str
    access_token_ttl: int = 3600
    max_body_bytes: int = 1024 * 1024
    # PostgREST's db-max-rows, as `max_rows` in supabase/config.toml: reads never return more rows.
    max_rows: int | None = 1000
    # GoTrue's, from supabase/config.toml: a revoked refresh token still works this many seconds.
    refresh_token_reuse_interval: int = 10
    # [auth.rate_limit] of supabase/config.toml: requests per 5 minutes and client address.
    rate_limits: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> GatewaySettings:
        data = json.loads(path.read_text())
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            db_url=str(data["db_url"]),
            authenticator_url=str(data["authenticator_url"]),
            jwt_secret=str(data["jwt_secret"]),
            access_token_ttl=int(data.get("access_token_ttl", 3600)),
            max_body_bytes=int(data.get("max_body_bytes", 1024 * 1024)),
            max_rows=int(data["max_rows"]) if data.get("max_rows") is not None else 1000,
            refresh_token_reuse_interval=int(data.get("refresh_token_reuse_interval", 10)),
            rate_limits={str(k): float(v) for k, v in dict(data.get("rate_limits", {})).items()},
        )
