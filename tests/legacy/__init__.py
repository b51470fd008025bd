"""The legacy "Redis as the database" chat store, for chat_migrate's tests and benchmark.

``writer`` writes the layout exactly as the legacy server does (its user, room and message writes),
``dirt`` adds every kind of dirt real stores have, ``generate`` fills a store of any size quickly, and
``server`` runs a private redis-server for it (the devstack Redis is an LRU cache and would evict it).
``python -m tests.legacy`` fills a store from the command line.
"""
