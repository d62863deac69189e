"""Tests of the accounts API: tokens, login throttling, roles, users and permissions."""
