-- 0002_erasure_coding: chunks stored as Reed-Solomon k+m shards (docs/formats.md "Shard
-- envelope"). ec_k = 0 means N copies (target = N, placements with shard 0); ec_k >= 1 means
-- k+m shards (target = k+m, one placement row per (shard, peer)).
ALTER TABLE chunks ADD COLUMN ec_k INT NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN ec_m INT NOT NULL DEFAULT 0;
