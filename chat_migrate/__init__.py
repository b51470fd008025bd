"""chat-migrate: move a legacy "Redis as the database" chat store into this project's Supabase schema.

An operator's tool, separate from the desktop app (it imports neither ``desktop_chat`` nor ``devstack``,
and the installer never bundles it). ``chat-migrate --help`` lists the subcommands; ``docs/migration.md``
walks through a migration. The design in one paragraph:

Everything it creates has an id derived from the legacy key (:mod:`chat_migrate.ids`), is written
inside a transaction together with a record of it in the ``chat_migrate`` schema (which no API role can
read), and a room is loaded whole or not at all. So a second run, or a run resumed after a crash, finds
what is done and does the rest; ``rollback`` knows exactly what a run created; ``verify`` compares every
room, user and membership with the legacy store. Messages are loaded set-based: each batch of rooms is
copied into a temporary staging table and inserted with one statement that numbers them in legacy
order, with the per-row order and audit triggers switched off for that transaction only, and the chat
counters set once (:mod:`chat_migrate.load`).
"""

__version__ = "1.0.0"
