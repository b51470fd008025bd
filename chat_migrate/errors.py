"""What can go wrong, as exceptions that carry one plain sentence and an exit code.

::

    MigrateError            exit 1: the command ran and did not succeed (refused, differences found)
    ├── BadInput            exit 2: an option or input file is wrong; nothing was read or written
    └── Unavailable         exit 3: Redis or the database cannot be reached or used as given
                                    (unreachable, wrong password, no desktop-chat schema, missing privilege)

The CLI prints ``chat-migrate: <message>`` on one line and exits with the code; nothing else leaks
(no traceback, no password: URLs are shown redacted).
"""

from __future__ import annotations


class MigrateError(Exception):
    """The command did not succeed; ``str(error)`` is the one line the operator sees."""

    exit_code = 1


class BadInput(MigrateError):
    exit_code = 2


class Unavailable(MigrateError):
    exit_code = 3
