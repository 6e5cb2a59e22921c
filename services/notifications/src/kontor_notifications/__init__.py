"""Kontor notifications service."""
