"""Kontor invoicing service."""
