"""Vendor API shapes over the one core: each package translates, none has models.

All reads and writes go through ``outbound.mail.services`` / ``selectors`` (and the events
they record), so a configuration written through one dialect reads the same through every
other and through the native API.
"""
