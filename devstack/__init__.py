"""devstack: a local Supabase-compatible stack (PostgreSQL, Redis, API gateway) without Docker.

Used by developers (`python -m devstack up`), by `make run`, and by the test suite, which starts a
throwaway stack on free ports. Never imported by the `desktop_chat` package.
"""
