"""The one API the UI uses (``ChatStoreAPI``): read-through reads, optimistic sends, live views.

``factory.open_data_layer`` builds it; ``chat_store.ChatStore`` is the face, and everything of one signed-in
user's lives in ``signed_in.SignedIn`` (reads, live sync, the sender, edits, chat administration).
"""
