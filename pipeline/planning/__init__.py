"""Deciding sentences before any pixel is decoded: the sentence layouts with LVM's defaults
(``layouts``), and the seeded selection that makes a mixture follow UVDv1's token shares
(``mixture``). Every random choice comes from (seed, source, key)."""
