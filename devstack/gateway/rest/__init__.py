"""The gateway's PostgREST-compatible ``/rest/v1`` service.

``parser`` (with ``reader``) turns the query string into a syntax tree and ``sql`` turns that into
parameterised SQL, both pure; ``catalog`` caches the schema that every identifier is checked against;
``context`` establishes the caller's role from the JWT and reads the body; ``runner`` runs statements as
the caller; ``handler`` serves the endpoints; ``errors`` speaks PostgREST's error shape.
"""

from __future__ import annotations

from devstack.gateway.rest.handler import routes, shutdown, startup
from devstack.gateway.rest.runner import reset_connection

__all__ = ["reset_connection", "routes", "shutdown", "startup"]
