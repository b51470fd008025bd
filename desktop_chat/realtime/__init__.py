"""One supervised Supabase Realtime subscription per user, with back-fill after every subscribe; pushes are
unpacked here and given meaning by the data layer's change-type table."""
