"""Entry of the verification bundle: the screenshot scenes of ``tests/gui/scenes.py``, frozen with the
release bundle's policy (``scenes.spec``), so the pictures show what the trimmed Qt paints."""

import sys

from tests.gui.scenes import main

sys.exit(main(sys.argv))
