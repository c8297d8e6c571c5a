-- 0001_initial: the home catalog and the storage-side blob registry (docs/formats.md "Peer
-- database `DIR/index.db`").
-- Ids are raw bytes (chunk ids: 32 bytes); peer ids are stored as 64-bit integers (bit pattern
-- of the unsigned id); sizes in bytes; times in nanoseconds since the Unix epoch.

-- Small settings, e.g. the chunker parameters recorded for existing data.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
);

-- Chunks owned by this (home) peer.
CREATE TABLE chunks (
  id         BLOB PRIMARY KEY,  -- chunk id
  kind       INT NOT NULL,      -- BlobKind: 1 data, 2 tree, 3 snapshot
  plain_size INT NOT NULL,      -- plaintext bytes
  blob_size  INT NOT NULL,      -- bytes of one blob (envelope)
  target     INT NOT NULL       -- copies wanted
);

-- Which peers hold which blob of a chunk (replicas: shard 0).
CREATE TABLE placements (
  chunk_id BLOB NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
  peer_id  INT NOT NULL,
  shard    INT NOT NULL,
  PRIMARY KEY (chunk_id, shard, peer_id)
);

-- Cache of encoded trees by tree chunk id.
CREATE TABLE trees (
  id   BLOB PRIMARY KEY,
  data BLOB NOT NULL
);

-- Snapshots: data = format::EncodeSnapshot bytes.
CREATE TABLE snapshots (
  id      BLOB PRIMARY KEY,
  time_ns INT NOT NULL,
  data    BLOB NOT NULL
);
CREATE INDEX snapshots_by_time ON snapshots (time_ns, id);

-- Blobs this (storage) peer holds for other owners.
CREATE TABLE blobs (
  owner     INT NOT NULL,
  chunk_id  BLOB NOT NULL,
  shard     INT NOT NULL,
  size      INT NOT NULL,   -- bytes
  checksum  BLOB NOT NULL,  -- XXH3-128, 16 bytes
  stored_ns INT NOT NULL,
  PRIMARY KEY (owner, chunk_id, shard)
);
