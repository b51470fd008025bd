"""Run the gateway as a supervised background process with its log in the state directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from devstack.config import REPO_ROOT, StackConfig
from devstack.procs import DevstackError, PortTaken, cmdline, pid_alive, port_in_use, read_pid, terminate, wait_for_port


class GatewayProcess:
    """The supervisor process (``python -m devstack.gateway.supervise``) and its pid file."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config

    @property
    def pidfile(self) -> Path:
        return self.config.state_dir / "gateway.pid"

    @property
    def log_file(self) -> Path:
        return self.config.logs_dir / "gateway.log"

    @property
    def settings_file(self) -> Path:
        return self.config.state_dir / "gateway.json"

    def pid(self) -> int | None:
        pid = read_pid(self.pidfile)
        if pid is None or not pid_alive(pid):
            return None
        if "devstack.gateway.supervise" not in " ".join(cmdline(pid)):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def settings(self) -> dict[str, object]:
        """What the gateway needs to know, handed over in a user-only JSON file."""
        project = self.config.project
        return {
            "host": self.config.host,
            "port": self.config.api_port,
            "db_url": self.config.db_url,
            "authenticator_url": self.config.role_db_url("authenticator"),
            "jwt_secret": self.config.jwt_secret,
            "access_token_ttl": self.config.access_token_ttl,
            "max_rows": project.max_rows,
            "refresh_token_reuse_interval": project.refresh_token_reuse_interval,
            "rate_limits": dict(project.rate_limits),
        }

    def start(self) -> bool:
        """Start the supervisor unless it already runs with the same settings. True when started."""
        wanted = self.settings()
        pid = self.pid()
        if pid is not None:
            try:
                current = json.loads(self.settings_file.read_text())
            except (OSError, ValueError):
                current = None
            if current == wanted and port_in_use(self.config.host, self.config.api_port):
                return False
            terminate(pid)
        self.pidfile.unlink(missing_ok=True)
        if port_in_use(self.config.host, self.config.api_port):
            raise PortTaken(
                f"port {self.config.api_port} on {self.config.host} is taken by another program; "
                "stop it or choose another port with DEVSTACK_API_PORT"
            )
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.settings_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(wanted, handle)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.pidfile.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            launcher = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "devstack.gateway.supervise",
                    "--daemon",
                    "--settings",
                    str(self.settings_file),
                    "--pidfile",
                    str(self.pidfile),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                timeout=30,
                check=False,
            )
        if launcher.returncode != 0:
            raise DevstackError(f"the gateway supervisor failed to start; see {self.log_file}")
        deadline = time.monotonic() + 10
        pid = read_pid(self.pidfile)
        while pid is None and time.monotonic() < deadline:
            time.sleep(0.02)
            pid = read_pid(self.pidfile)
        if pid is None:
            raise DevstackError(f"the gateway supervisor did not record its pid; see {self.log_file}")
        try:
            wait_for_port(self.config.host, self.config.api_port, timeout=30, pid=pid)
        except DevstackError as error:
            terminate(pid)
            raise DevstackError(f"the gateway did not start ({error}); see {self.log_file}") from None
        return True

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        terminate(pid, timeout=15)
        self.pidfile.unlink(missing_ok=True)
        return True
