"""Redacted logging, the metrics registry and the crash handler."""
