-- 0003_lifecycle: forget and garbage collection, reclaim, extra copies (docs/formats.md "Peer
-- database `DIR/index.db`"). Times in nanoseconds since the Unix epoch.

-- Home side. Extra copies of a chunk (copies scheme, shard 0) held beyond its target on peers
-- with spare space: never counted toward the target; the peer may evict them at any time.
CREATE TABLE extra_placements (
  chunk_id BLOB NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
  peer_id  INT NOT NULL,
  PRIMARY KEY (chunk_id, peer_id)
);

-- Home side. Blobs garbage collection dropped from the catalog, to be deleted on their peer
-- (DeleteBlobs); a row goes when the peer confirmed, or when a later placement of the same
-- blob on that peer cancels it.
CREATE TABLE pending_deletions (
  peer_id   INT NOT NULL,
  chunk_id  BLOB NOT NULL,
  shard     INT NOT NULL,
  queued_ns INT NOT NULL,
  PRIMARY KEY (peer_id, chunk_id, shard)
);
-- Delivery lists a peer's queue oldest first, in batches.
CREATE INDEX pending_deletions_by_age ON pending_deletions (peer_id, queued_ns, chunk_id, shard);

-- Storage side. extra = 1: held as an extra copy, evicted (oldest stored_ns first) when space
-- is needed.
ALTER TABLE blobs ADD COLUMN extra INT NOT NULL DEFAULT 0;
CREATE INDEX blobs_extra ON blobs (extra, stored_ns);

-- Storage side. BlobMoved notices not yet delivered to the owner (reclaim).
CREATE TABLE moved_outbox (
  owner     INT NOT NULL,
  chunk_id  BLOB NOT NULL,
  shard     INT NOT NULL,
  to_peer   INT NOT NULL,
  queued_ns INT NOT NULL,
  PRIMARY KEY (owner, chunk_id, shard)
);
