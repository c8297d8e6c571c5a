#include "cairn/store/s3/memory_object_store.h"

#include "cairn/store/s3/object_store_conformance.h"

namespace cairn::store::s3 {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, ObjectStoreConformance,
                         ::testing::Values(StoreFactory{
                             "memory", [] { return std::make_unique<MemoryObjectStore>(); }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cairn::store::s3
