"""Adapters: the outside world behind the core's ports."""
