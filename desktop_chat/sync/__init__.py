"""Sending: the durable outbox, the delivery decisions and the one owner of pending messages, ``Sender``,
whose every change is a typed lifecycle event (``lifecycle``)."""
