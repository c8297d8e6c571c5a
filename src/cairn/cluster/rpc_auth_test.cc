#include "cairn/cluster/rpc_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cairn/base/status.h"

namespace cairn::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr char kMethod[] = "/cairn.v1.Peer/GetBlob";
const std::string kClientNode = "0123456789abcdef0123456789abcdef";
const std::string kServerNode = "fedcba9876543210fedcba9876543210";

ClusterKey Key(uint8_t seed) {
  ClusterKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 13 + i);
  return k;
}

Digest Hash(uint8_t fill) {
  Digest d;
  d.fill(fill);
  return d;
}

class RpcAuthTest : public ::testing::Test {
 protected:
  RpcAuthTest()
      : client_(Key(1), {7, kClientNode}, &clock_), server_(Key(1), {2, kServerNode}, &clock_) {}

  absl::StatusCode Verify(const std::string& header, const Digest& body = Hash(1),
                          const char* method = kMethod) {
    return server_.VerifyRequest(method, header, body).status().code();
  }

  env::FakeClock clock_;
  RpcAuth client_;
  RpcAuth server_;
};

TEST_F(RpcAuthTest, ValidRequestVerifiesOnceAndNamesTheCaller) {
  SignedRequest req = client_.SignRequest(kMethod, Hash(1));
  auto ok = server_.VerifyRequest(kMethod, req.header, Hash(1));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->caller, (NodeIdentity{7, kClientNode}));
  EXPECT_EQ(ok->nonce, req.nonce);
  // The same header again is a replay.
  auto again = server_.VerifyRequest(kMethod, req.header, Hash(1));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("replayed"));
  // Two calls never share a nonce.
  EXPECT_NE(client_.SignRequest(kMethod, Hash(1)).nonce, req.nonce);
}

TEST_F(RpcAuthTest, AlteredRequestsAreRefused) {
  // Another body or method than the one signed.
  EXPECT_EQ(Verify(client_.SignRequest(kMethod, Hash(1)).header, Hash(2)),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Verify(client_.SignRequest(kMethod, Hash(1)).header, Hash(1), "/cairn.v1.Peer/PutBlob"),
            absl::StatusCode::kUnauthenticated);
  // Change each field of the header in turn.
  for (size_t i = 1; i < 7; ++i) {
    SignedRequest req = client_.SignRequest(kMethod, Hash(1));
    std::vector<std::string> fields = absl::StrSplit(req.header, ' ');
    ASSERT_EQ(fields.size(), 7u);
    std::string& f = fields[i];
    f.back() = f.back() == '1' ? '2' : '1';
    EXPECT_EQ(Verify(absl::StrJoin(fields, " ")), absl::StatusCode::kUnauthenticated)
        << "field " << i << ": " << absl::StrJoin(fields, " ");
    if (i < 6) {
      // Refused on its metadata alone, before any body is read, and the nonce not burnt.
      EXPECT_FALSE(server_.PreVerifyRequest(kMethod, absl::StrJoin(fields, " ")).ok()) << i;
      EXPECT_EQ(Verify(req.header), absl::StatusCode::kOk) << i;
    }
  }
}

TEST_F(RpcAuthTest, MetadataIsCheckedBeforeTheBodyAndOneHeaderAdmitsOneBody) {
  SignedRequest req = client_.SignRequest(kMethod, Hash(1));
  auto pre = server_.PreVerifyRequest(kMethod, req.header);
  ASSERT_TRUE(pre.ok()) << pre.status();
  EXPECT_EQ(pre->caller, (NodeIdentity{7, kClientNode}));
  EXPECT_TRUE(server_.VerifyRequestBody(kMethod, req.header, Hash(1)).ok());
  EXPECT_EQ(server_.VerifyRequestBody(kMethod, req.header, Hash(2)).code(),
            absl::StatusCode::kUnauthenticated);
  // The nonce was claimed before the body: the same header again (a recorded one, with any
  // body) is refused before its body is read.
  auto again = server_.PreVerifyRequest(kMethod, req.header);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("replayed"));
  // An older cairn's v1 header is named as such.
  std::vector<std::string> fields = absl::StrSplit(req.header, ' ');
  fields[0] = "v1";
  fields.erase(fields.begin() + 5);
  auto v1 = server_.PreVerifyRequest(kMethod, absl::StrJoin(fields, " "));
  EXPECT_EQ(v1.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(v1.status().message()), HasSubstr("older"));
}

TEST_F(RpcAuthTest, WrongClusterKeyIsRefused) {
  RpcAuth outsider(Key(9), {7, kClientNode}, &clock_);
  SignedRequest req = outsider.SignRequest(kMethod, Hash(1));
  auto result = server_.VerifyRequest(kMethod, req.header, Hash(1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("bad MAC"));
  EXPECT_EQ(server_.remembered_nonces(), 0u);  // outsiders cannot fill the replay cache
}

TEST_F(RpcAuthTest, StaleOrFutureTimesAreRefused) {
  struct Case {
    std::chrono::seconds offset;
    absl::StatusCode want;
  } cases[] = {{-301s, absl::StatusCode::kUnauthenticated},
               {-299s, absl::StatusCode::kOk},
               {0s, absl::StatusCode::kOk},
               {299s, absl::StatusCode::kOk},
               {301s, absl::StatusCode::kUnauthenticated},
               {-3600s, absl::StatusCode::kUnauthenticated}};
  for (const Case& c : cases) {
    env::FakeClock at(clock_.NowNanos() + std::chrono::nanoseconds(c.offset).count());
    RpcAuth sender(Key(1), {7, kClientNode}, &at);
    SignedRequest req = sender.SignRequest(kMethod, Hash(1));
    VerifiedRequest skewed;
    auto got = server_.PreVerifyRequest(kMethod, req.header, &skewed);
    EXPECT_EQ(got.status().code(), c.want) << "offset " << c.offset.count() << " s";
    if (got.ok()) {
      EXPECT_EQ(got->clock_offset_seconds, c.offset.count());
      EXPECT_EQ(skewed.caller.peer_id, 0u);  // not reported as skewed
      continue;
    }
    // A member (its MAC verifies) is told its offset, and the server learns who it is.
    EXPECT_EQ(skewed.caller, (NodeIdentity{7, kClientNode}));
    EXPECT_EQ(skewed.clock_offset_seconds, c.offset.count());
    const std::string message(got.status().message());
    EXPECT_THAT(message, HasSubstr("clock skew"));
    EXPECT_THAT(message, HasSubstr(c.offset < 0s ? "behind" : "ahead of"));
    EXPECT_EQ(ParseClockSkew(message), c.offset.count()) << message;
  }
  // An outsider with a bad clock learns nothing about this peer's clock.
  env::FakeClock far(clock_.NowNanos() + std::chrono::nanoseconds(3600s).count());
  RpcAuth outsider(Key(9), {7, kClientNode}, &far);
  VerifiedRequest skewed;
  auto got =
      server_.PreVerifyRequest(kMethod, outsider.SignRequest(kMethod, Hash(1)).header, &skewed);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(got.status().message()), Not(HasSubstr("clock")));
  EXPECT_EQ(skewed.caller.peer_id, 0u);
}

TEST(ClockSkewMessageTest, RoundTripsTheOffset) {
  for (int64_t offset :
       {int64_t{-86400}, int64_t{-301}, int64_t{0}, int64_t{301}, int64_t{1} << 40}) {
    const std::string message = ClockSkewMessage(offset, 300);
    EXPECT_THAT(message, HasSubstr("300 s"));
    EXPECT_EQ(ParseClockSkew("put blob 1/ab/0 to peer 3: " + message), offset) << message;
  }
  EXPECT_EQ(ParseClockSkew("not authenticated as a cluster member"), std::nullopt);
  EXPECT_EQ(ParseClockSkew("clock skew: the caller's clock is x s behind"), std::nullopt);
  EXPECT_EQ(ParseClockSkew("clock skew: the caller's clock is 5 s sideways"), std::nullopt);
}

TEST(SignedByTest, NamesTheMemberThroughAnnotationsAndOnlyOnErrors) {
  absl::Status refused = absl::UnauthenticatedError(ClockSkewMessage(-600, 300));
  EXPECT_EQ(SignedBy(refused), std::nullopt);  // unsigned: nobody vouches for it
  SetSignedBy(&refused, {3, kServerNode});
  EXPECT_EQ(SignedBy(refused), (NodeIdentity{3, kServerNode}));
  // The retrying client and Guard rewrite the message; the member must survive that.
  absl::Status annotated = Annotate(WithMessage(refused, "peer 127.0.0.1:1: x"), "ping");
  EXPECT_EQ(annotated.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(annotated.message(), "ping: peer 127.0.0.1:1: x");
  EXPECT_EQ(SignedBy(annotated), (NodeIdentity{3, kServerNode}));
  absl::Status ok;
  SetSignedBy(&ok, {3, kServerNode});
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(SignedBy(ok), std::nullopt);
  // A payload that is not a member's identity is ignored.
  absl::Status forged = absl::UnauthenticatedError("x");
  forged.SetPayload("type.cairn.dev/cairn.SignedBy", absl::Cord("zero"));
  EXPECT_EQ(SignedBy(forged), std::nullopt);
}

TEST_F(RpcAuthTest, NoncesAreForgottenAfterTheWindowAndTheCacheIsBounded) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Verify(client_.SignRequest(kMethod, Hash(1)).header), absl::StatusCode::kOk);
  }
  EXPECT_EQ(server_.remembered_nonces(), 10u);
  SignedRequest old = client_.SignRequest(kMethod, Hash(1));
  ASSERT_EQ(Verify(old.header), absl::StatusCode::kOk);
  clock_.Advance(301s);
  // The old request is now refused by its time, so its nonce need not be kept.
  EXPECT_EQ(Verify(old.header), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Verify(client_.SignRequest(kMethod, Hash(1)).header), absl::StatusCode::kOk);
  EXPECT_EQ(server_.remembered_nonces(), 1u);

  RpcAuthOptions small;
  small.max_nonces = 3;
  RpcAuth tiny(Key(1), {2, kServerNode}, &clock_, small);
  for (int i = 0; i < 3; ++i) {
    SignedRequest r = client_.SignRequest(kMethod, Hash(1));
    ASSERT_TRUE(tiny.VerifyRequest(kMethod, r.header, Hash(1)).ok());
  }
  SignedRequest r = client_.SignRequest(kMethod, Hash(1));
  EXPECT_EQ(tiny.VerifyRequest(kMethod, r.header, Hash(1)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(RpcAuthTest, MalformedHeaders) {
  SignedRequest req = client_.SignRequest(kMethod, Hash(1));
  for (const std::string& header :
       {std::string(), std::string("v1"), std::string("garbage"), "v3" + req.header.substr(2),
        req.header + " extra", req.header.substr(0, req.header.size() - 2),
        std::string("v2 0 ") + kClientNode + " 1 00 00 00", std::string(5000, 'x')}) {
    EXPECT_EQ(Verify(header), absl::StatusCode::kUnauthenticated) << header;
  }
}

TEST_F(RpcAuthTest, Replies) {
  SignedRequest req = client_.SignRequest(kMethod, Hash(1));
  auto verified = server_.VerifyRequest(kMethod, req.header, Hash(1));
  ASSERT_TRUE(verified.ok());
  std::string reply = server_.SignReply(kMethod, verified->nonce, 0, "", Hash(5));
  auto callee = client_.VerifyReply(kMethod, req.nonce, 0, "", Hash(5), reply);
  ASSERT_TRUE(callee.ok()) << callee.status();
  EXPECT_EQ(*callee, (NodeIdentity{2, kServerNode}));

  auto refused = [&](const CallNonce& nonce, int code, std::string_view message, const Digest& body,
                     const std::string& header) {
    return client_.VerifyReply(kMethod, nonce, code, message, body, header).status().code() ==
           absl::StatusCode::kUnauthenticated;
  };
  CallNonce other_nonce = req.nonce;
  other_nonce[0] ^= 1;
  EXPECT_TRUE(refused(other_nonce, 0, "", Hash(5), reply));  // answer to another call
  EXPECT_TRUE(refused(req.nonce, 5, "", Hash(5), reply));    // status changed
  EXPECT_TRUE(refused(req.nonce, 0, "x", Hash(5), reply));   // message changed
  EXPECT_TRUE(refused(req.nonce, 0, "", Hash(6), reply));    // body changed
  EXPECT_TRUE(refused(req.nonce, 0, "", Hash(5), ""));       // no MAC
  EXPECT_TRUE(refused(req.nonce, 0, "", Hash(5), "v1 2 " + kServerNode + " 00"));
  RpcAuth outsider(Key(9), {2, kServerNode}, &clock_);
  EXPECT_TRUE(
      refused(req.nonce, 0, "", Hash(5), outsider.SignReply(kMethod, req.nonce, 0, "", Hash(5))));
  // Errors are MAC'd with their code and message.
  std::string error =
      server_.SignReply(kMethod, req.nonce, 6, "peer id 7 belongs to another node", Hash(0));
  EXPECT_TRUE(
      client_
          .VerifyReply(kMethod, req.nonce, 6, "peer id 7 belongs to another node", Hash(0), error)
          .ok());
}

}  // namespace
}  // namespace cairn::cluster
