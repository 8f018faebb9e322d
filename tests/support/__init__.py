"""Helpers shared by tests: data readers and builders that are not fixtures themselves."""
