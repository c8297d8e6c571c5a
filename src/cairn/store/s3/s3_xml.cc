#include "cairn/store/s3/s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <charconv>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace cairn::store::s3 {
namespace {

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

void SilentError(void*, const char*, ...) {}

Doc ParseXml(std::string_view xml) {
  static std::once_flag once;
  std::call_once(once, [] {
    xmlInitParser();
    // Parse errors become a status; libxml2 would otherwise print them on stderr.
    xmlSetGenericErrorFunc(nullptr, SilentError);
  });
  if (xml.empty() || xml.size() > (64u << 20)) return nullptr;
  return Doc(xmlReadMemory(
      xml.data(), static_cast<int>(xml.size()), "s3.xml", nullptr,
      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS));
}

bool Is(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0;
}

std::string Text(const xmlNode* n) {
  xmlChar* s = xmlNodeGetContent(n);
  std::string out = s ? reinterpret_cast<const char*>(s) : "";
  xmlFree(s);
  return out;
}

const xmlNode* Child(const xmlNode* parent, const char* name) {
  for (const xmlNode* c = parent->children; c; c = c->next) {
    if (Is(c, name)) return c;
  }
  return nullptr;
}

std::string ChildText(const xmlNode* parent, const char* name) {
  const xmlNode* c = Child(parent, name);
  return c ? Text(c) : "";
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ListPage> ParseListObjectsV2(std::string_view xml) {
  Doc doc = ParseXml(xml);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (root == nullptr || !Is(root, "ListBucketResult")) {
    return absl::DataLossError("S3 listing is not a ListBucketResult document");
  }
  ListPage page;
  for (const xmlNode* c = root->children; c; c = c->next) {
    if (!Is(c, "Contents")) continue;
    ObjectInfo info;
    info.key = ChildText(c, "Key");
    info.etag = Unquote(ChildText(c, "ETag"));
    std::string size = ChildText(c, "Size");
    auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), info.size);
    if (ec != std::errc() || p != size.data() + size.size() || info.key.empty()) {
      return absl::DataLossError(absl::StrCat("S3 listing has an entry with key \"", info.key,
                                              "\" and size \"", size, "\""));
    }
    page.objects.push_back(std::move(info));
  }
  if (ChildText(root, "IsTruncated") == "true") {
    page.next_token = ChildText(root, "NextContinuationToken");
    if (page.next_token.empty()) {
      return absl::DataLossError("S3 listing is truncated but has no NextContinuationToken");
    }
  }
  return page;
}

absl::StatusOr<S3ErrorBody> ParseError(std::string_view xml) {
  Doc doc = ParseXml(xml);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (root == nullptr || !Is(root, "Error")) return absl::NotFoundError("no S3 <Error> body");
  S3ErrorBody e;
  e.code = ChildText(root, "Code");
  e.message = ChildText(root, "Message");
  e.resource = ChildText(root, "Resource");
  e.request_id = ChildText(root, "RequestId");
  e.bucket_name = ChildText(root, "BucketName");
  return e;
}

absl::StatusOr<std::string> ParseInitiateMultipartUpload(std::string_view xml) {
  Doc doc = ParseXml(xml);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  std::string id =
      root && Is(root, "InitiateMultipartUploadResult") ? ChildText(root, "UploadId") : "";
  if (id.empty()) return absl::DataLossError("S3 multipart initiation answer has no UploadId");
  return id;
}

absl::StatusOr<std::string> ParseCompleteMultipartUpload(std::string_view xml) {
  Doc doc = ParseXml(xml);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (root == nullptr || !Is(root, "CompleteMultipartUploadResult")) {
    return absl::DataLossError(
        "S3 multipart completion answer is not a "
        "CompleteMultipartUploadResult document");
  }
  return Unquote(ChildText(root, "ETag"));
}

std::string BuildCompleteMultipartUpload(const std::vector<CompletedPart>& parts) {
  std::string out = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& p : parts) {
    absl::StrAppend(&out, "<Part><PartNumber>", p.number, "</PartNumber><ETag>", Escape(p.etag),
                    "</ETag></Part>");
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

}  // namespace cairn::store::s3
