"""Kontor shared package."""
