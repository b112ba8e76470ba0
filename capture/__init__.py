"""ProvKB capture."""
