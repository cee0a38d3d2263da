"""Shared plumbing for Centricity services; no service logic lives here."""
