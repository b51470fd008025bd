"""One local stack: bring it up, report it, take it down, reset it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from devstack import migrate
from devstack.config import ANON_KEY, SERVICE_ROLE_KEY, StackConfig
from devstack.gateway.process import GatewayProcess
from devstack.postgres import PostgresServer
from devstack.redis_server import RedisServer

T = TypeVar("T")


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, also when the caller is inside a running event loop (an async
    test that is the first to ask for the stack fixture): then on a private thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Stack:
    """PostgreSQL, Redis and the API gateway of one state directory."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres = PostgresServer(config)
        self.redis = RedisServer(config)
        self.gateway = GatewayProcess(config)

    def info(self) -> dict[str, Any]:
        """What clients need to connect, as printed by ``devstack up --json``."""
        c = self.config
        return {
            "api_url": c.api_url,
            "rest_url": f"{c.api_url}/rest/v1",
            "auth_url": f"{c.api_url}/auth/v1",
            "realtime_url": f"ws://{c.host}:{c.api_port}/realtime/v1/websocket",
            "db_url": c.db_url,
            "redis_url": self.redis.url,
            "anon_key": ANON_KEY,
            "service_role_key": SERVICE_ROLE_KEY,
            "jwt_secret": c.jwt_secret,
            "state_dir": str(c.state_dir),
            "logs_dir": str(c.logs_dir),
        }

    def status(self) -> dict[str, Any]:
        return {
            "postgres": {"running": self.postgres.running(), "port": self.config.db_port},
            "redis": {"running": self.redis.running(), "port": self.config.redis_port},
            "gateway": {
                "running": self.gateway.running(),
                "port": self.config.api_port,
                "enabled": self.config.gateway,
            },
        }

    def up(self, *, seed: bool = True) -> dict[str, Any]:
        """Start what is not running and apply pending migrations. Idempotent.

        When something fails, the services this call started are stopped again, so a failed ``up``
        leaves the machine as it found it.
        """
        started: list[PostgresServer | RedisServer | GatewayProcess] = []
        timings: dict[str, float] = {}
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # The postgres user needs to pass through to reach the cluster when it lives inside.
            os.chmod(self.config.state_dir, 0o711)  # noqa: S103 - traverse only, no listing
        try:
            t0 = time.perf_counter()
            if not self.postgres.initialized():
                self.postgres.init()
            timings["initdb"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if self.postgres.start():
                started.append(self.postgres)
            timings["postgres"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = _run_coroutine(migrate.apply(self.config.db_url, self.config.supabase_dir, seed=seed))
            timings["migrate"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if self.redis.start():
                started.append(self.redis)
            timings["redis"] = time.perf_counter() - t0
            if self.config.gateway:
                t0 = time.perf_counter()
                if self.gateway.start():
                    started.append(self.gateway)
                timings["gateway"] = time.perf_counter() - t0
        except BaseException:
            for service in reversed(started):
                service.stop()
            raise
        info = self.info()
        info["applied_migrations"] = report.applied
        info["seeded"] = report.seeded
        info["timings"] = {key: round(value, 3) for key, value in timings.items()}
        self.config.stack_file.write_text(json.dumps(self.info(), indent=2) + "\n")
        os.chmod(self.config.stack_file, 0o600)
        return info

    def down(self) -> list[str]:
        """Stop this stack's services (and nothing else). Returns the names of those stopped."""
        stopped = []
        if self.gateway.stop():
            stopped.append("gateway")
        if self.redis.stop():
            stopped.append("redis")
        if self.postgres.stop():
            stopped.append("postgres")
        return stopped

    def reset(self, *, seed: bool = True) -> dict[str, Any]:
        """Throw away the database and cache and start again from migrations and seed."""
        self.down()
        self.postgres.destroy()
        shutil.rmtree(self.config.redis_dir, ignore_errors=True)
        return self.up(seed=seed)

    def destroy(self) -> None:
        """Stop everything and delete the state directory (throwaway stacks)."""
        self.down()
        self.postgres.destroy()
        shutil.rmtree(self.config.state_dir, ignore_errors=True)
