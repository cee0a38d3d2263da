"""Centricity portal: the customer portal and the staff console."""
