"""ChatStore, the one API the UI uses: read-through reads, optimistic sends, change events."""
