"""Outbound: a self-hosted service for a platform's outbound connections."""
