"""One supervised Supabase Realtime subscription per user, with back-fill after every subscribe."""
