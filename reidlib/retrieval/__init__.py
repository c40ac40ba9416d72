"""reidlib.retrieval."""
