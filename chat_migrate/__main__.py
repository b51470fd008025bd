"""``chat-migrate`` / ``python -m chat_migrate``."""

from __future__ import annotations

import sys

from chat_migrate.cli import main

if __name__ == "__main__":
    sys.exit(main())
