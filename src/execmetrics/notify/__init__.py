"""Notifications: channels, messages, delivery through the outbox, quiet hours, digests."""
