"""Knowledge collections: documents agents search and fill (keyword and semantic search)."""
