-- 0005_segments: storage side. Blobs appended to segment (pack) files (docs/formats.md
-- "Segments"; store/segment_registry.h). The segment files are the log; these tables are the
-- materialized view of them that lookups use. Sizes and offsets in bytes.

-- One row per segment file. state: 0 open (appended to), 1 sealed, 2 retired (compacted away,
-- its file being removed). registered_end: length of the file prefix whose records all have a
-- row in segment_blobs (records after it are re-registered from the file on open).
CREATE TABLE segments (
  id             INTEGER PRIMARY KEY,
  state          INT NOT NULL,
  registered_end INT NOT NULL
);

-- One row per record of a segment. state: 0 live (held), 1 dead (deleted or evicted; its bytes
-- stay until compaction), 2 quarantined (found corrupt; not held). At most one live row per key.
CREATE TABLE segment_blobs (
  segment   INT NOT NULL,
  pos       INT NOT NULL,   -- offset of the record in the segment file
  owner     INT NOT NULL,
  chunk_id  BLOB NOT NULL,
  shard     INT NOT NULL,
  size      INT NOT NULL,   -- blob bytes
  checksum  BLOB NOT NULL,  -- XXH3-128 of the blob, 16 bytes
  kind      INT NOT NULL,
  extra     INT NOT NULL,
  state     INT NOT NULL,
  stored_ns INT NOT NULL,
  PRIMARY KEY (segment, pos)
) WITHOUT ROWID;
CREATE UNIQUE INDEX segment_blobs_live ON segment_blobs (owner, chunk_id, shard) WHERE state = 0;
CREATE INDEX segment_blobs_extra ON segment_blobs (stored_ns, owner, chunk_id, shard)
  WHERE state = 0 AND extra <> 0;
