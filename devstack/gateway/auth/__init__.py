"""The gateway's GoTrue-compatible ``/auth/v1`` service.

``handler`` serves the endpoints; ``store`` keeps users, sessions and refresh tokens in the ``auth``
tables; ``passwords`` holds the policy and bcrypt hashing; ``errors`` GoTrue's error shape.
"""

from __future__ import annotations

from devstack.gateway.auth.handler import routes, shutdown, startup

__all__ = ["routes", "shutdown", "startup"]
