"""ProvKB ui."""
