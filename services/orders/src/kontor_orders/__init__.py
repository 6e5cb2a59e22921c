"""Kontor orders service."""
