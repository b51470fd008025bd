"""Entry point of the packaged app (PyInstaller needs a script, not a module)."""

import sys

from desktop_chat.__main__ import main

sys.exit(main())
