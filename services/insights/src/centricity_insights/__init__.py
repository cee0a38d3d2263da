"""The insights service: turns idea and vote facts into per-idea insight snapshots."""
