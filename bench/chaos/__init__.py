"""The chaos suite (``make chaos``, ``python -m bench.chaos``): real faults against a real stack and real clients.

See ``docs/architecture.md`` (section 8, "The chaos matrix") for the cells and how they are counted, and
``accounting.py`` for the exact definitions of sent, stored, shown once, lost, duplicated and heal time.
"""
