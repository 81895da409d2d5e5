"""Plugins: the MCP servers agents are given (built in, from a registry, or custom)."""
