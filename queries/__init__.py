"""ProvKB queries."""
