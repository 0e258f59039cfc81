#include "client/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "net/tls.hpp"

namespace pylon::client {
namespace {

// Thrown by TlsContext::get, with OpenSSL's reason.
[[noreturn]] void reject(const std::string& what) {
  std::string message = "tls: " + what + ": " + net::tls_last_error_reason();
  ERR_clear_error();
  throw std::invalid_argument(message);
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::get(const TlsOptions& options) {
  // verify = false trusts nothing, so a CA file alone is the key that matters with verify on.
  const std::string ca_file = options.verify ? options.ca_file : std::string();
  static std::mutex mutex;
  static std::map<std::pair<bool, std::string>, std::weak_ptr<const TlsContext>> cache;
  std::lock_guard lock(mutex);
  auto& slot = cache[{options.verify, ca_file}];
  if (auto shared = slot.lock()) return shared;

  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (context == nullptr) reject("cannot create a context");
  std::shared_ptr<const TlsContext> made(new TlsContext(context, options.verify));
  // TLS 1.0 and 1.1 are deprecated (RFC 8996); Nginx in deploy/ offers 1.2 and 1.3.
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  // The write path hands over what the kernel did not take from pending_, which moves as the
  // backlog grows, one record at a time.
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // An EOF without close_notify is just the end of the connection: WebSocket's closing handshake
  // (RFC 6455 §7), not TLS, says whether the messages were complete. Renegotiation (TLS 1.2) would
  // make reads write and writes read; servers have no reason to ask for it.
  SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  // Read ahead: one recv() takes as many records as fit OpenSSL's buffer, instead of one for
  // each record header and one for each body (net::TlsSession::has_buffered covers what epoll
  // misses).
  SSL_CTX_set_read_ahead(context, 1);
  if (options.verify) {
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
    // The system store is loaded as one file, now: the hashed directory that
    // SSL_CTX_set_default_verify_paths adds is read during verification, on the loop thread.
    std::string file = options.ca_file;
    if (file.empty()) {
      const char* from_environment = std::getenv(X509_get_default_cert_file_env());
      file = from_environment != nullptr ? from_environment : X509_get_default_cert_file();
    }
    if (SSL_CTX_load_verify_locations(context, file.c_str(), nullptr) != 1)
      reject(options.ca_file.empty() ? "cannot load the system trust store " + file
                                     : "ca_file: cannot load " + file);
  }
  slot = made;
  return made;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(context_);
}

}  // namespace pylon::client
