"""The knowledge base: one store over Bolt (embedded ArcadeDB or Neo4j), writes and exports."""
