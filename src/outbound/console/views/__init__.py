"""Console views, one module per area; :mod:`.base` holds what they share."""
