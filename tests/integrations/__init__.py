"""Tests of the integrations: authentication objects and their API."""
