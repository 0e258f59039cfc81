// OCSP stapling of `pylon serve`'s certificates (RFC 6066 §8 status_request, RFC 6960 responses;
// docs/security.md "OCSP stapling").
//
// An OcspStaple is one certificate's response, read from the certificate file's name + ".ocsp"
// (DER, HAProxy's convention) when the certificates load: at start-up, on SIGHUP or on a change of
// the files, never on a loop. It is checked then: it parses, the responder answered "successful",
// it speaks of this very certificate (its CertID, with the issuer taken from the certificate's
// chain), its signature verifies against that issuer, its status is good or revoked, and its
// nextUpdate is ahead. One that fails a check is not stapled and problem() says why.
//
// Handshakes call the status callback of their context on any loop thread; it staples the
// response while its nextUpdate is ahead. Immutable once loaded but for a flag: any thread.
#pragma once

#include <openssl/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pylon::detail {

class OcspStaple {
 public:
  // Reads and checks the response of the certificate (and chain) `context` holds, loaded from
  // `certificate_file`. A missing, bad or stale response is not an error: stapling is optional
  // for clients, so it never stops a certificate from being served (problem() says why).
  OcspStaple(SSL_CTX* context, const std::string& certificate_file);
  OcspStaple(const OcspStaple&) = delete;
  OcspStaple& operator=(const OcspStaple&) = delete;

  // Where the response of the certificate in `certificate_file` is read from.
  static std::string file_for(const std::string& certificate_file) {
    return certificate_file + ".ocsp";
  }

  // Makes the handshakes of `context` staple this response when the client asks; this staple
  // must outlive them (the certificate set owning both does: a handshake holds the set).
  void install(SSL_CTX* context) const;

  const std::string& file() const noexcept { return file_; }
  bool stapled() const noexcept { return problem_.empty(); }
  const std::string& problem() const noexcept { return problem_; }    // empty when stapled
  std::string_view status() const noexcept { return status_; }        // "good" or "revoked"
  std::int64_t next_update() const noexcept { return next_update_; }  // Unix seconds; 0: none

 private:
  std::string check(SSL_CTX* context);
  static int staple(SSL* ssl, void* self);

  std::string file_;
  std::vector<unsigned char> response_;  // DER, as read; empty when not stapled
  std::string problem_;
  std::string_view status_;
  std::int64_t next_update_ = 0;
  mutable std::atomic<bool> expiry_logged_{false};  // the staple's one line when it went stale
};

}  // namespace pylon::detail
