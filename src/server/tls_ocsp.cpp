#include "server/tls_ocsp.hpp"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

#include "net/tls.hpp"
#include "obs/log.hpp"

namespace pylon::detail {
namespace {

// A responder's clock may run a little ahead of ours: thisUpdate up to this far in the future is
// accepted (`openssl ocsp`'s default -validity_period).
constexpr std::int64_t kClockSkew = 300;

using Response = net::OpenSslOwned<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using BasicResponse = net::OpenSslOwned<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using CertificateId = net::OpenSslOwned<OCSP_CERTID, OCSP_CERTID_free>;
using Store = net::OpenSslOwned<X509_STORE, X509_STORE_free>;

// The certificate of the chain that issued `certificate`: the one its CertID names.
X509* issuer_in(STACK_OF(X509) * chain, X509* certificate) {
  for (int index = 0; index < sk_X509_num(chain); ++index) {
    X509* candidate = sk_X509_value(chain, index);
    if (X509_check_issued(candidate, certificate) == X509_V_OK) return candidate;
  }
  return nullptr;
}

// The single response about `certificate`. RFC 6960 §4.1.1: a CertID hashes the issuer's name
// and key with an algorithm of the responder's choice (SHA-1 mostly, SHA-256 sometimes), so ours
// is computed with each response's own.
OCSP_SINGLERESP* response_about(OCSP_BASICRESP* basic, X509* certificate, X509* issuer) {
  for (int index = 0; index < OCSP_resp_count(basic); ++index) {
    OCSP_SINGLERESP* single = OCSP_resp_get0(basic, index);
    // OpenSSL takes the CertID as non-const to read it.
    auto* id = const_cast<OCSP_CERTID*>(OCSP_SINGLERESP_get0_id(single));
    ASN1_OBJECT* digest_name = nullptr;
    OCSP_id_get0_info(nullptr, &digest_name, nullptr, nullptr, id);
    const EVP_MD* digest = EVP_get_digestbyobj(digest_name);
    if (digest == nullptr) continue;
    const CertificateId ours(OCSP_cert_to_id(digest, certificate, issuer));
    if (ours != nullptr && OCSP_id_cmp(ours.get(), id) == 0) return single;
  }
  return nullptr;
}

// RFC 6960 §4.2.2.2: signed by the issuer itself, or by a responder certificate the issuer gave
// the OCSPSigning purpose (carried in the response). The issuer is the only trust anchor: what
// makes the response worth stapling is that the certificate's own CA said it.
bool signed_by(OCSP_BASICRESP* basic, STACK_OF(X509) * chain, X509* issuer) {
  const Store store(X509_STORE_new());
  if (store == nullptr || X509_STORE_add_cert(store.get(), issuer) != 1) return false;
  // The issuer may be an intermediate: the chain ends there, not at a root.
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  return OCSP_basic_verify(basic, chain, store.get(), 0) == 1;
}

std::string spell_time(std::int64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  return {text, std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts)};
}

}  // namespace

OcspStaple::OcspStaple(SSL_CTX* context, const std::string& certificate_file)
    : file_(file_for(certificate_file)) {
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    problem_ = "cannot read " + file_ + ": " + std::strerror(errno);
    return;
  }
  response_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  problem_ = check(context);
  ERR_clear_error();
  if (!problem_.empty()) {
    response_.clear();
    status_ = {};
    next_update_ = 0;
  }
}

std::string OcspStaple::check(SSL_CTX* context) {
  const unsigned char* cursor = response_.data();
  const Response response(d2i_OCSP_RESPONSE(nullptr, &cursor, static_cast<long>(response_.size())));
  if (response == nullptr || cursor != response_.data() + response_.size())
    return "not a DER OCSP response";
  if (const int answer = OCSP_response_status(response.get());
      answer != OCSP_RESPONSE_STATUS_SUCCESSFUL)
    return std::string("the responder answered \"") + OCSP_response_status_str(answer) + "\"";
  const BasicResponse basic(OCSP_response_get1_basic(response.get()));
  if (basic == nullptr) return "not a basic OCSP response";

  X509* certificate = SSL_CTX_get0_certificate(context);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(context, &chain);
  X509* issuer = issuer_in(chain, certificate);
  if (issuer == nullptr)
    return "the certificate's issuer is not in its file (the chain), so the response cannot be "
           "checked";
  OCSP_SINGLERESP* single = response_about(basic.get(), certificate, issuer);
  if (single == nullptr) return "it is about another certificate";
  if (!signed_by(basic.get(), chain, issuer))
    return "its signature does not verify against the certificate's issuer: " +
           net::tls_last_error_reason();

  int reason = 0;
  ASN1_GENERALIZEDTIME* revoked_at = nullptr;
  ASN1_GENERALIZEDTIME* this_update = nullptr;
  ASN1_GENERALIZEDTIME* next_update = nullptr;
  const int status =
      OCSP_single_get0_status(single, &reason, &revoked_at, &this_update, &next_update);
  // Revoked is stapled: it is the truth, and a client that asked gets it either way (from the
  // responder, unless it soft-fails). Unknown says nothing a client can use.
  if (status == V_OCSP_CERTSTATUS_UNKNOWN)
    return "the responder does not know the certificate (status unknown)";
  status_ = status == V_OCSP_CERTSTATUS_REVOKED ? "revoked" : "good";
  // RFC 6960 §4.2.2.1: without nextUpdate "newer information is always available"; such a
  // response would be stapled for ever after the responder stopped vouching for it.
  if (next_update == nullptr) return "it has no nextUpdate, so it never goes stale";
  const std::int64_t now = std::time(nullptr);
  if (net::tls_unix_time(this_update) > now + kClockSkew)
    return "its thisUpdate " + spell_time(net::tls_unix_time(this_update)) + " is in the future";
  next_update_ = net::tls_unix_time(next_update);
  if (next_update_ <= now) return "it expired at " + spell_time(next_update_) + " (nextUpdate)";
  return {};
}

void OcspStaple::install(SSL_CTX* context) const {
  SSL_CTX_set_tlsext_status_cb(context, &OcspStaple::staple);
  SSL_CTX_set_tlsext_status_arg(context, const_cast<OcspStaple*>(this));
}

// Called during a handshake whose ClientHello carries status_request, after the SNI callback
// chose the context (so with that certificate's staple).
int OcspStaple::staple(SSL* ssl, void* self) {
  const auto& staple = *static_cast<const OcspStaple*>(self);
  if (staple.response_.empty()) return SSL_TLSEXT_ERR_NOACK;
  if (std::time(nullptr) >= staple.next_update_) {
    if (!staple.expiry_logged_.exchange(true, std::memory_order_relaxed))
      obs::log(obs::LogLevel::warn, "OCSP response expired; no longer stapled",
               {{"file", std::string_view(staple.file_)},
                {"next_update", std::string_view(spell_time(staple.next_update_))}});
    return SSL_TLSEXT_ERR_NOACK;
  }
  // OpenSSL takes the buffer and frees it with the SSL: a copy per handshake that asks.
  auto* copy =
      static_cast<unsigned char*>(OPENSSL_memdup(staple.response_.data(), staple.response_.size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(staple.response_.size()));
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace pylon::detail
