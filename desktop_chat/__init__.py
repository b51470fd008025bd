"""desktop-chat: a desktop chat client over Supabase with a Redis read cache."""

__version__ = "0.1.0"
