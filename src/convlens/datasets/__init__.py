"""Data files shipped inside the package (see each folder's README for provenance)."""
