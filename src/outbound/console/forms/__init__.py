"""Console forms, one module per area. They parse and describe input (labels, limits, help);
the rules themselves are the services' (their errors are put next to the fields)."""
