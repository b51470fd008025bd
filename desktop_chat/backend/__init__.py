"""Everything that talks to Supabase through the official supabase client."""
