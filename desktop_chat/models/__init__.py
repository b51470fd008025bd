"""Pydantic models and typed ids; no I/O."""
