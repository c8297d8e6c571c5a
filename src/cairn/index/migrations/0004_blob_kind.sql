-- 0004_blob_kind: storage side. The kind of each held blob (1 data, 2 tree, 3 snapshot), read
-- from its envelope header at Put, so that ListBlobs tells an owner recovering its index which
-- of its blobs are snapshots (docs/formats.md "Peer database `DIR/index.db`"; docs/protocol.md
-- ListBlobs). Blobs stored before this migration keep 0 (unknown): the owner reads their header
-- with GetBlob.
ALTER TABLE blobs ADD COLUMN kind INT NOT NULL DEFAULT 0;
