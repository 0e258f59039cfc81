// TLS for wss:// (OpenSSL), in the client role, on a non-blocking socket of the client's loop.
//
// TlsContext is one SSL_CTX per distinct configuration (verify, ca_file): make_client_profile
// gets it from a process-wide cache, so every profile, connection and loop with the same
// configuration shares one (an SSL_CTX is safe to share between threads once set up). It is
// built on the caller's thread, where reading the trust store may block; the loop never reads a
// file.
//
// TlsSession is one connection's SSL: the handshake, then records in and out, each call returning
// at once with what it did or what it waits for (the loop turns want_read / want_write into epoll
// interest). Loop thread only.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

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

enum class TlsStatus : std::uint8_t {
  done,        // the call did its work (bytes > 0 for read and write)
  want_read,   // wait for EPOLLIN, then call again
  want_write,  // wait for EPOLLOUT, then call again
  closed,      // the server closed the connection (close_notify or EOF)
  failed,      // a TLS or socket error: error() says which
};

struct TlsResult {
  TlsStatus status;
  std::size_t bytes = 0;
};

class TlsSession {
 public:
  // server_name: SNI (when not an IP address) and the name the certificate must match.
  // Throws std::bad_alloc when OpenSSL cannot allocate the connection.
  // server_name must outlive the session (it lives in the connection's profile).
  TlsSession(const TlsContext& context, int fd, const std::string& server_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  TlsResult handshake();
  TlsResult read(std::span<std::uint8_t> buffer);
  // Takes whole records. After want_write the bytes not taken must be offered again first (they
  // may have moved: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), as the client's pending_ does.
  TlsResult write(const char* data, std::size_t size);
  // Decrypted or read-ahead bytes that epoll cannot see: read again before waiting.
  bool has_buffered() const noexcept;
  // Sends close_notify when the session is healthy; never waits for the server's.
  void shutdown() noexcept;
  // After failed (or a handshake ending in closed): one line starting with "tls: ".
  const std::string& error() const noexcept { return error_; }
  int socket_error() const noexcept { return socket_error_; }  // errno of a failed socket call

 private:
  TlsResult outcome(int result, bool handshaking);

  SSL* ssl_;
  std::string_view server_name_;  // for the error message of a name mismatch
  std::string error_;
  int socket_error_ = 0;
  bool broken_ = false;  // a fatal error: OpenSSL forbids shutdown after it
};

// The write path's transport (net/outbox.hpp) over a TLS session. A record OpenSSL could not
// finish stays in its buffer and counts as not taken: the outbox offers the same bytes first
// next time, as OpenSSL requires.
struct TlsTransport {
  TlsSession& tls;
  // 0, or the errno of a failed write (EPROTO for a TLS error, EPIPE after close_notify).
  int send(const char* data, std::size_t size, std::size_t& taken) const;
};

}  // namespace pylon::client
