"""Kontor clients service."""
