"""The devstack API gateway: Supabase-compatible Auth, REST and Realtime on one loopback port.

``process`` starts and stops it as a supervised background process; ``app`` builds the ASGI
application that serves ``/auth/v1``, ``/rest/v1`` and ``/realtime/v1``.
"""
