"""Tests of the core: secrets, key rotation, egress policy, events and probes."""
