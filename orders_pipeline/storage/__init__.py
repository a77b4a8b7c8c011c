"""Storage: the data-dir layout, atomic partition writes that merge versions, and their file primitives."""
