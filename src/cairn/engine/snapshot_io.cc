#include "cairn/engine/snapshot_io.h"

#include "cairn/base/status.h"
#include "cairn/codec/crypto.h"

namespace cairn::engine {

absl::StatusOr<StoredChunk> StoreTree(const EngineContext& ctx, const format::Tree& tree,
                                      const Redundancy& redundancy) {
  Bytes encoded = format::EncodeTree(tree);
  StoredChunk stored;
  stored.id = codec::ComputeChunkId(ctx.keys.id_key, encoded);
  CAIRN_RETURN_IF_ERROR(ctx.catalog->PutTree(stored.id, encoded));
  CAIRN_ASSIGN_OR_RETURN(auto known, ctx.catalog->FindChunk(stored.id));
  if (known && SatisfiesRedundancy(*known, redundancy)) {
    stored.outcome.holders = known->holders;
    stored.outcome.shards = known->shards;
    stored.outcome.at_target = known->AtTarget();
    return stored;
  }
  CAIRN_ASSIGN_OR_RETURN(stored.outcome,
                         PutChunk(ctx, BlobKind::kTree, stored.id, encoded, redundancy, known));
  return stored;
}

absl::StatusOr<StoredChunk> StoreSnapshot(const EngineContext& ctx,
                                          const format::Snapshot& snapshot,
                                          const Redundancy& redundancy) {
  Bytes encoded = format::EncodeSnapshot(snapshot);
  StoredChunk stored;
  stored.id = codec::ComputeChunkId(ctx.keys.id_key, encoded);
  CAIRN_ASSIGN_OR_RETURN(auto known, ctx.catalog->FindChunk(stored.id));
  CAIRN_ASSIGN_OR_RETURN(stored.outcome,
                         PutChunk(ctx, BlobKind::kSnapshot, stored.id, encoded, redundancy, known));
  CAIRN_RETURN_IF_ERROR(ctx.catalog->AddSnapshot({stored.id, snapshot}));
  return stored;
}

}  // namespace cairn::engine
