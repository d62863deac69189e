"""Shared API building blocks."""
