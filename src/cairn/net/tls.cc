#include "cairn/net/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "cairn/cluster/tls_identity.h"

namespace cairn::net {
namespace {

namespace gx = grpc::experimental;

std::shared_ptr<gx::CertificateProviderInterface> IdentityProvider(const TlsOptions& options) {
  std::vector<gx::IdentityKeyCertPair> pairs(1);
  pairs[0].private_key = options.key_pem;
  pairs[0].certificate_chain = options.cert_pem;
  return std::make_shared<gx::StaticDataCertificateProvider>(std::move(pairs));
}

// gRPC creates, uses and destroys a verifier on threads it hands it between with its own
// synchronization, which ThreadSanitizer cannot see (docs/operations.md "Testing with
// ThreadSanitizer"). PinVerifier locks this mutex at the end of its construction, around each
// verification (held throughout: one takes microseconds) and at the start of its
// destruction, so that the hand-offs are visible to it.
// A namespace-scope std::mutex is constant-initialized: no thread writes it before use.
std::mutex verifier_handoff;

// Client side: the server's certificate must match the pin of the peer at `address`.
class PinVerifier final : public gx::ExternalCertificateVerifier {
 public:
  PinVerifier(std::string address,
              std::function<absl::Status(const std::string&, const std::string&)> check,
              std::shared_ptr<TlsRefusals> refusals)
      : address_(std::move(address)), check_(std::move(check)), refusals_(std::move(refusals)) {
    std::lock_guard<std::mutex> lock(verifier_handoff);
  }

  ~PinVerifier() override { std::lock_guard<std::mutex> lock(verifier_handoff); }

  bool Verify(gx::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    std::lock_guard<std::mutex> lock(verifier_handoff);
    return VerifyWith(address_, check_, refusals_, request, sync_status);
  }

  void Cancel(gx::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  static bool VerifyWith(
      const std::string& address,
      const std::function<absl::Status(const std::string&, const std::string&)>& check,
      const std::shared_ptr<TlsRefusals>& refusals, gx::TlsCustomVerificationCheckRequest* request,
      grpc::Status* sync_status) {
    grpc::string_ref cert = request->peer_cert();
    absl::StatusOr<std::string> fingerprint =
        cluster::CertFingerprint(std::string_view(cert.data(), cert.size()));
    absl::Status verdict = fingerprint.status();
    if (fingerprint.ok() && check) verdict = check(address, *fingerprint);
    if (!fingerprint.ok()) {
      verdict = absl::PermissionDeniedError(
          absl::StrCat("the peer at ", address,
                       " presented no usable TLS certificate: ", fingerprint.status().message()));
    }
    if (verdict.ok()) {
      if (refusals) refusals->Clear();
      *sync_status = grpc::Status::OK;
    } else {
      // Once per reason, not at every reconnection attempt.
      std::optional<absl::Status> last = refusals ? refusals->Last() : std::nullopt;
      if (!last.has_value() || *last != verdict) {
        spdlog::warn("TLS: refused the peer at {}: {}", address, std::string(verdict.message()));
      }
      if (refusals) refusals->Set(verdict);
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(verdict.message()));
    }
    return true;  // answered synchronously
  }

  const std::string address_;
  const std::function<absl::Status(const std::string&, const std::string&)> check_;
  const std::shared_ptr<TlsRefusals> refusals_;
};

}  // namespace

void TlsRefusals::Set(absl::Status refusal) {
  std::lock_guard<std::mutex> lock(mu_);
  last_ = std::move(refusal);
}

void TlsRefusals::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  last_.reset();
}

std::optional<absl::Status> TlsRefusals::Last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& options) {
  gx::TlsServerCredentialsOptions tls(IdentityProvider(options));
  tls.watch_identity_key_cert_pairs();
  // A client certificate is asked for but not verified here: the peer service checks it
  // against the pin of the peer id the call authenticates as.
  tls.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  tls.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
  tls.set_check_call_host(false);
  return gx::TlsServerCredentials(tls);
}

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const TlsOptions& options, const std::string& address, std::shared_ptr<TlsRefusals> refusals) {
  gx::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(IdentityProvider(options));
  tls.watch_identity_key_cert_pairs();
  // Self-signed certificates: no chain to verify; PinVerifier checks the fingerprint.
  tls.set_verify_server_certs(false);
  tls.set_check_call_host(false);
  tls.set_certificate_verifier(gx::ExternalCertificateVerifier::Create<PinVerifier>(
      address, options.check_server, std::move(refusals)));
  return gx::TlsCredentials(tls);
}

namespace {
std::mutex fingerprint_cache_mu;  // constant-initialized, as verifier_handoff above
}  // namespace

std::optional<std::string> PeerCertFingerprint(const grpc::AuthContext* context) {
  if (context == nullptr) return std::nullopt;
  std::vector<grpc::string_ref> certs = context->FindPropertyValues("x509_pem_cert");
  if (certs.empty()) return std::nullopt;
  const std::string_view pem(certs[0].data(), certs[0].size());
  // Parsing the PEM costs more than many a call it authenticates (OpenSSL 3 builds a decoder
  // per parse: 8% of a storage peer's CPU during a backup), and a peer sees the same few
  // certificates on every call: remember their fingerprints. Bounded: a cluster has few
  // members; past the bound (certificates of outsiders that passed the handshake) it starts over.
  constexpr size_t kMaxCached = 1024;
  static auto* cache = new absl::flat_hash_map<std::string, std::string>();
  {
    std::lock_guard<std::mutex> lock(fingerprint_cache_mu);
    if (auto it = cache->find(absl::string_view(pem.data(), pem.size())); it != cache->end()) {
      return it->second;
    }
  }
  absl::StatusOr<std::string> fingerprint = cluster::CertFingerprint(pem);
  if (!fingerprint.ok()) return std::nullopt;
  std::lock_guard<std::mutex> lock(fingerprint_cache_mu);
  if (cache->size() >= kMaxCached) cache->clear();
  cache->emplace(std::string(pem), *fingerprint);
  return *fingerprint;
}

}  // namespace cairn::net
