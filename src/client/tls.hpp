// The client role's TLS configuration for wss:// (OpenSSL); the connections themselves are
// net::TlsSession (net/tls.hpp), shared with the server.
//
// TlsContext is one SSL_CTX per distinct configuration (verify, ca_file): make_client_profile
// gets it from a process-wide cache, so every profile, connection and loop with the same
// configuration shares one (an SSL_CTX is safe to share between threads once set up). It is
// built on the caller's thread, where reading the trust store may block; the loop never reads a
// file.
#pragma once

#include <openssl/types.h>

#include <memory>

#include "pylon/client.hpp"

namespace pylon::client {

class TlsContext {
 public:
  // Throws std::invalid_argument ("tls: ca_file: cannot load /x.pem: ...").
  static std::shared_ptr<const TlsContext> get(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const noexcept { return context_; }
  bool verify() const noexcept { return verify_; }

 private:
  TlsContext(SSL_CTX* context, bool verify) : context_(context), verify_(verify) {}
  SSL_CTX* context_;
  bool verify_;
};

}  // namespace pylon::client
