"""The stack's private PostgreSQL 15 cluster: initdb, configure, start, stop."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from devstack.config import DB_PASSWORD, DB_USER, StackConfig
from devstack.procs import (
    PortTaken,
    chown_to_service_user,
    pid_alive,
    port_in_use,
    read_pid,
    run_as_service_user,
)
from devstack.tools import pg_tool

_INCLUDE_LINE = "include_if_exists = 'devstack.conf'"


class PostgresServer:
    """One cluster in ``config.pg_data``, listening on ``config.host:config.db_port``."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config

    @property
    def log_file(self) -> Path:
        return self.config.pg_dir / "postgres.log"

    def initialized(self) -> bool:
        return (self.config.pg_data / "PG_VERSION").is_file()

    def pid(self) -> int | None:
        """The postmaster's pid when this cluster's server is running."""
        pid = read_pid(self.config.pg_data / "postmaster.pid")
        if pid is None or not pid_alive(pid):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def listening_port(self) -> int | None:
        """The port recorded by the running server (line 4 of postmaster.pid)."""
        try:
            lines = (self.config.pg_data / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def init(self) -> None:
        """Create the cluster (superuser ``postgres`` with the stack's password)."""
        pg_dir = self.config.pg_dir
        pg_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(pg_dir, 0o700)
        if self.config.pg_data.exists():
            # A half-made cluster from an interrupted initdb: start over.
            shutil.rmtree(self.config.pg_data)
        pwfile = pg_dir / "initdb.pw"
        pwfile.write_text(DB_PASSWORD + "\n")
        os.chmod(pwfile, 0o600)
        chown_to_service_user(pg_dir)
        try:
            run_as_service_user(
                [
                    pg_tool("initdb"),
                    "--pgdata",
                    str(self.config.pg_data),
                    "--username",
                    DB_USER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
                + (["--no-sync"] if self.config.ephemeral else [])
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.config.pg_data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(f"\n{_INCLUDE_LINE}\n")

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": f"'{self.config.host}'",
            "port": str(self.config.db_port),
            "unix_socket_directories": f"'{self.config.pg_dir}'",
            "max_connections": "200",
            "shared_buffers": "128MB",
            # Logical decoding feeds the gateway's realtime service (wal2json).
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
            "log_line_prefix": "'%m [%p] '",
        }
        if self.config.ephemeral:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        text = "# Written by devstack on every start; edits are overwritten.\n" + "".join(
            f"{key} = {value}\n" for key, value in settings.items()
        )
        path = self.config.pg_data / "devstack.conf"
        path.write_text(text)
        chown_to_service_user(path)

    def start(self) -> bool:
        """Start the server unless it already runs on the configured port. True when started."""
        if self.running():
            if self.listening_port() == self.config.db_port:
                return False
            self.stop()
        if port_in_use(self.config.host, self.config.db_port):
            raise PortTaken(
                f"port {self.config.db_port} on {self.config.host} is taken by another program; "
                "stop it or choose another port with DEVSTACK_DB_PORT"
            )
        self._write_settings()
        self.log_file.touch()
        chown_to_service_user(self.log_file)
        run_as_service_user(
            [
                pg_tool("pg_ctl"),
                "--pgdata",
                str(self.config.pg_data),
                "--log",
                str(self.log_file),
                "--wait",
                "--timeout=60",
                "start",
            ],
            timeout=90,
        )
        self._link_log()
        return True

    def stop(self) -> bool:
        """Stop the server if it runs. True when it was running."""
        if not self.running():
            return False
        run_as_service_user(
            [pg_tool("pg_ctl"), "--pgdata", str(self.config.pg_data), "--mode=fast", "--wait", "stop"],
            timeout=90,
        )
        deadline = time.monotonic() + 30
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    def destroy(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop()
        shutil.rmtree(self.config.pg_dir, ignore_errors=True)

    def _link_log(self) -> None:
        # The cluster may live outside the state directory (see StackConfig.pg_dir); keep the log
        # findable next to the others.
        link = self.config.logs_dir / "postgres.log"
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == self.log_file:
                return
            link.unlink()
        link.symlink_to(self.log_file)
