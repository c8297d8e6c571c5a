-- 0006_offsite: owner side. How many of a chunk's copies (or shards) should be on peers of
-- another site than the home peer's (docs/formats.md "Peer database `DIR/index.db`";
-- docs/operations.md "Sites and off-site copies"). Chunks recorded before this migration keep
-- 0: no off-site target.
ALTER TABLE chunks ADD COLUMN offsite INT NOT NULL DEFAULT 0;
