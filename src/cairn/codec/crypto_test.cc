#include "cairn/codec/crypto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace cairn::codec {
namespace {

Bytes Hex(std::string_view hex) {
  auto b = FromHex(hex);
  EXPECT_TRUE(b.ok()) << hex;
  return b.ok() ? *b : Bytes{};
}

Key KeyOf(uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

TEST(HkdfTest, Rfc5869TestCase1) {
  Bytes ikm(22, 0x0b);
  auto okm = HkdfSha256(ikm, Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHex(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfTest, Rfc5869TestCase3EmptySaltAndInfo) {
  Bytes ikm(22, 0x0b);
  auto okm = HkdfSha256(ikm, {}, {}, 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHex(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfTest, RejectsBadOutputLength) {
  Bytes ikm(32, 1);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 255 * 32 + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HkdfSha256(ikm, {}, {}, 255 * 32).ok());
}

TEST(HmacTest, Rfc4231TestCase2) {
  auto mac = HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(ToHex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacTest, EmptyKeyAndMessage) {
  EXPECT_EQ(ToHex(HmacSha256({}, {})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Sha256Test, Fips180Abc) {
  EXPECT_EQ(ToHex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ChunkIdTest, IsHmacOfPlaintextUnderIdKey) {
  Key id_key = KeyOf(7);
  ByteSpan data = AsBytes("some chunk plaintext");
  EXPECT_EQ(ComputeChunkId(id_key, data).bytes, HmacSha256(id_key, data));
  EXPECT_NE(ComputeChunkId(KeyOf(8), data), ComputeChunkId(id_key, data));
}

TEST(DeriveOwnerKeysTest, DistinctAndDeterministic) {
  Key master = KeyOf(0x42);
  OwnerKeys a = DeriveOwnerKeys(master);
  OwnerKeys b = DeriveOwnerKeys(master);
  EXPECT_EQ(a.id_key, b.id_key);
  EXPECT_EQ(a.encryption_key, b.encryption_key);
  EXPECT_EQ(a.chunker_seed, b.chunker_seed);
  std::set<Key> keys = {a.id_key, a.encryption_key, a.chunker_seed, master};
  EXPECT_EQ(keys.size(), 4u) << "subkeys must differ from each other and from the master";
  // The documented derivation (crypto.h): HKDF-SHA256, empty salt, the info strings.
  EXPECT_EQ(Bytes(a.id_key.begin(), a.id_key.end()),
            *HkdfSha256(master, {}, AsBytes("cairn/v1/chunk-id"), 32));
  EXPECT_EQ(Bytes(a.encryption_key.begin(), a.encryption_key.end()),
            *HkdfSha256(master, {}, AsBytes("cairn/v1/encrypt"), 32));
  EXPECT_EQ(Bytes(a.chunker_seed.begin(), a.chunker_seed.end()),
            *HkdfSha256(master, {}, AsBytes("cairn/v1/chunker"), 32));
  EXPECT_NE(DeriveOwnerKeys(KeyOf(0x43)).id_key, a.id_key);
}

TEST(RandomTest, KeysAndNoncesDiffer) {
  EXPECT_NE(RandomKey(), RandomKey());
  EXPECT_NE(RandomNonce(), RandomNonce());
}

TEST(AeadTest, NistGcmTestCase14) {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (AES-256).
  Key key{};
  Nonce nonce{};
  Bytes plaintext(16, 0);
  Bytes sealed = AeadSeal(key, nonce, {}, plaintext);
  EXPECT_EQ(ToHex(sealed), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(AeadTest, RoundTrip) {
  Key key = RandomKey();
  Nonce nonce = RandomNonce();
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1000}, size_t{1} << 20}) {
    Bytes plaintext(size);
    for (size_t i = 0; i < size; ++i) plaintext[i] = static_cast<uint8_t>(i * 31 + 7);
    Bytes sealed = AeadSeal(key, nonce, AsBytes("aad"), plaintext);
    ASSERT_EQ(sealed.size(), size + kTagSize);
    auto opened = AeadOpen(key, nonce, AsBytes("aad"), sealed);
    ASSERT_TRUE(opened.ok()) << size << ": " << opened.status();
    EXPECT_EQ(*opened, plaintext) << size;
  }
}

// Sealing behind a header that is also the AAD (how blobs are sealed) gives the same bytes as
// AeadSeal, and opens.
TEST(AeadTest, SealAppendBehindTheAadEqualsSeal) {
  const Key key = KeyOf(3);
  const Nonce nonce = RandomNonce();
  for (size_t size : {size_t{0}, size_t{17}, size_t{1} << 16}) {
    Bytes plaintext(size);
    for (size_t i = 0; i < size; ++i) plaintext[i] = static_cast<uint8_t>(i * 13 + 1);
    const ByteSpan header_text = AsBytes("header bytes, 24 long...");
    const Bytes header(header_text.begin(), header_text.end());
    Bytes blob = header;
    AeadSealAppend(key, nonce, ByteSpan(blob.data(), header.size()), plaintext, &blob);
    ASSERT_EQ(blob.size(), header.size() + size + kTagSize);
    EXPECT_TRUE(std::equal(header.begin(), header.end(), blob.begin()));
    const Bytes sealed = AeadSeal(key, nonce, header, plaintext);
    EXPECT_TRUE(std::equal(sealed.begin(), sealed.end(), blob.begin() + header.size())) << size;
    auto opened = AeadOpen(key, nonce, header,
                           ByteSpan(blob.data() + header.size(), blob.size() - header.size()));
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(AeadTest, TamperingIsDataLoss) {
  const Key key = KeyOf(1);
  const Nonce nonce = RandomNonce();
  const std::string aad = "owner=7 chunk=ab kind=data shard=0";
  const Bytes sealed = AeadSeal(key, nonce, AsBytes(aad), AsBytes("attack at dawn, bring snacks"));

  struct Case {
    const char* name;
    Key key;
    Nonce nonce;
    std::string aad;
    Bytes sealed;
  };
  std::vector<Case> cases;
  {
    Bytes s = sealed;
    s[3] ^= 0x01;
    cases.push_back({"ciphertext bit", key, nonce, aad, s});
  }
  {
    Bytes s = sealed;
    s.back() ^= 0x80;
    cases.push_back({"tag bit", key, nonce, aad, s});
  }
  {
    Bytes s = sealed;
    s.erase(s.begin());
    cases.push_back({"dropped byte", key, nonce, aad, s});
  }
  cases.push_back({"aad", key, nonce, aad + "!", sealed});
  cases.push_back({"empty aad", key, nonce, "", sealed});
  {
    Nonce n = nonce;
    n[0] ^= 1;
    cases.push_back({"nonce", key, n, aad, sealed});
  }
  cases.push_back({"key", KeyOf(2), nonce, aad, sealed});
  cases.push_back({"short input", key, nonce, aad, Bytes(kTagSize - 1, 0)});
  cases.push_back({"empty input", key, nonce, aad, Bytes{}});
  cases.push_back({"tag only", key, nonce, aad, Bytes(kTagSize, 0)});

  for (const Case& c : cases) {
    auto opened = AeadOpen(c.key, c.nonce, AsBytes(c.aad), c.sealed);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << c.name;
  }
  ASSERT_TRUE(AeadOpen(key, nonce, AsBytes(aad), sealed).ok());
}

TEST(ConstantTimeEqualTest, ComparesBytesAndLengths) {
  EXPECT_TRUE(ConstantTimeEqual({}, {}));
  EXPECT_TRUE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("ab")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes(""), AsBytes("a")));
}

TEST(Sha256HasherTest, PiecesEqualOneShot) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  for (size_t piece : {size_t{1}, size_t{63}, size_t{64}, size_t{4096}, data.size()}) {
    Sha256Hasher hasher;
    for (size_t off = 0; off < data.size(); off += piece) {
      hasher.Update(AsBytes(std::string_view(data).substr(off, piece)));
    }
    EXPECT_EQ(hasher.Finish(), Sha256(AsBytes(data))) << "piece " << piece;
  }
  Sha256Hasher empty;
  // FIPS 180-4 test vector: SHA-256("").
  EXPECT_EQ(ToHex(empty.Finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace cairn::codec
