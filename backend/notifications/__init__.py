"""Outgoing notifications to chat and push services (apprise URLs)."""
