#include "cairn/store/s3/s3_xml.h"

#include <gtest/gtest.h>

namespace cairn::store::s3 {
namespace {

// Recorded from ListObjectsV2 (AWS S3 API Reference examples, trimmed).
constexpr char kListTruncated[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>peer7/seg/</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>
  <NextContinuationToken>1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg==</NextContinuationToken>
  <Contents>
    <Key>peer7/seg/00000001</Key>
    <LastModified>2026-11-30T10:00:00.000Z</LastModified>
    <ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag>
    <Size>67108864</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>peer7/seg/a &amp; b</Key>
    <ETag>"3e1b3c6f0e5e3a9c2f5e3c1b2a3d4e5f-3"</ETag>
    <Size>12582912</Size>
  </Contents>
</ListBucketResult>)";

constexpr char kListLast[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name>
<Prefix>peer7/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
<Contents><Key>peer7/registry</Key><ETag>"abc"</ETag><Size>0</Size></Contents></ListBucketResult>)";

TEST(ParseListObjectsV2, TruncatedPageHasTokenAndEntries) {
  auto page = ParseListObjectsV2(kListTruncated);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next_token, "1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg==");
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "peer7/seg/00000001");
  EXPECT_EQ(page->objects[0].size, 67108864u);
  EXPECT_EQ(page->objects[0].etag, "599bab3ed2c697f1d26842727561fd94");
  EXPECT_EQ(page->objects[1].key, "peer7/seg/a & b");
  EXPECT_EQ(page->objects[1].size, 12582912u);
  EXPECT_EQ(page->objects[1].etag, "3e1b3c6f0e5e3a9c2f5e3c1b2a3d4e5f-3");
}

TEST(ParseListObjectsV2, LastPageHasNoToken) {
  auto page = ParseListObjectsV2(kListLast);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->next_token.empty());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].size, 0u);
}

TEST(ParseListObjectsV2, EmptyListing) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->next_token.empty());
}

TEST(ParseListObjectsV2, BadBodiesAreDataLoss) {
  for (const char* body : {
           "", "not xml", "<html><body>proxy error</body></html>",
           "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>1",  // cut short
       }) {
    EXPECT_EQ(ParseListObjectsV2(body).status().code(), absl::StatusCode::kDataLoss) << body;
  }
}

TEST(ParseListObjectsV2, EntitiesAreNotExpanded) {
  // An external entity must not be fetched or read (XML_PARSE_NONET, no NOENT).
  auto page = ParseListObjectsV2(
      "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
      "<ListBucketResult><Contents><Key>&e;</Key><Size>1</Size></Contents></ListBucketResult>");
  if (page.ok()) {
    for (const auto& o : page->objects) EXPECT_EQ(o.key.find("root:"), std::string::npos);
  }
}

TEST(ParseError, RecordedErrors) {
  auto e = ParseError(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>
<BucketName>cairn-offsite</BucketName><RequestId>4442587FB7D0A2F9</RequestId>
<HostId>x</HostId></Error>)");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->code, "NoSuchBucket");
  EXPECT_EQ(e->message, "The specified bucket does not exist");
  EXPECT_EQ(e->bucket_name, "cairn-offsite");
  EXPECT_EQ(e->request_id, "4442587FB7D0A2F9");

  auto slow = ParseError(
      "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
      "</Message><Resource>/b/k</Resource></Error>");
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(slow->code, "SlowDown");
  EXPECT_EQ(slow->resource, "/b/k");

  EXPECT_EQ(ParseError("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseError("<html>503</html>").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseError(kListLast).status().code(), absl::StatusCode::kNotFound);
}

TEST(Multipart, InitiateAndComplete) {
  auto id = ParseInitiateMultipartUpload(R"(<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket><Key>peer7/seg/00000002</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
</InitiateMultipartUploadResult>)");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  EXPECT_EQ(ParseInitiateMultipartUpload("<InitiateMultipartUploadResult/>").status().code(),
            absl::StatusCode::kDataLoss);

  auto etag = ParseCompleteMultipartUpload(R"(<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Location>http://bucket.s3.amazonaws.com/peer7/seg/00000002</Location>
  <Bucket>bucket</Bucket><Key>peer7/seg/00000002</Key>
  <ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag>
</CompleteMultipartUploadResult>)");
  ASSERT_TRUE(etag.ok()) << etag.status();
  EXPECT_EQ(*etag, "3858f62230ac3c915f300c664312c11f-9");
  // A 200 whose body is an error (S3 API Reference, CompleteMultipartUpload).
  EXPECT_EQ(
      ParseCompleteMultipartUpload("<Error><Code>InternalError</Code></Error>").status().code(),
      absl::StatusCode::kDataLoss);
}

TEST(Multipart, CompleteBodyListsPartsInOrderEscaped) {
  std::string body = BuildCompleteMultipartUpload({{1, "\"aaa\""}, {2, "\"b<b\""}});
  EXPECT_EQ(body,
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;aaa&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;b&lt;b&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
}

}  // namespace
}  // namespace cairn::store::s3
