"""Centricity notifications service."""
