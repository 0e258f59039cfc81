// One TLS connection over a non-blocking socket (OpenSSL), in either role: the client's wss://
// (src/client) and `pylon serve`'s native TLS (src/server) share it (DESIGN.md "TLS is a
// transport in src/net shared by both roles").
//
// TlsSession is one connection's SSL: the handshake, then records in and out, each call returning
// at once with what it did or what it waits for (the loop turns want_read / want_write into epoll
// interest). The SSL_CTX it is made from belongs to the caller (src/client/tls.hpp builds the
// client's, src/server/tls_certificates.hpp the server's). Loop thread only.
//
// TlsTransport is the write path's transport (net/outbox.hpp) over a session.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace pylon::net {

enum class TlsStatus : std::uint8_t {
  done,        // the call did its work (bytes > 0 for read and write)
  want_read,   // wait for EPOLLIN, then call again
  want_write,  // wait for EPOLLOUT, then call again
  closed,      // the peer closed the connection (close_notify or EOF)
  failed,      // a TLS or socket error: error() says which
};

struct TlsResult {
  TlsStatus status;
  std::size_t bytes = 0;
};

class TlsSession {
 public:
  // The client role: server_name is sent as SNI (when not an IP address) and, with verify, is the
  // name the certificate must match. server_name must outlive the session (it lives in the
  // connection's profile). Throws std::bad_alloc when OpenSSL cannot allocate the connection.
  static std::unique_ptr<TlsSession> connect(SSL_CTX* context, int fd,
                                             const std::string& server_name, bool verify);
  // The server role. Records go through OpenSSL's own socket BIO, which is what lets the kernel
  // take over the encryption (kTLS) when the context enables it; its write() could raise SIGPIPE,
  // which Server::run ignores for the whole process. Throws std::bad_alloc like connect.
  static std::unique_ptr<TlsSession> accept(SSL_CTX* context, int fd);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  TlsResult handshake();
  TlsResult read(std::span<std::uint8_t> buffer);
  // Takes whole records. After want_write the bytes not taken must be offered again first (they
  // may have moved: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), as the outbox's backlog does.
  TlsResult write(const char* data, std::size_t size);
  // Decrypted or read-ahead bytes that epoll cannot see: read again before waiting.
  bool has_buffered() const noexcept;
  // Sends close_notify when the session is healthy; never waits for the peer's.
  void shutdown() noexcept;
  // The kernel encrypts what this session sends (kTLS, SSL_OP_ENABLE_KTLS): after the handshake.
  bool kernel_sends() const noexcept;
  // After failed (or a handshake ending in closed): one line starting with "tls: ".
  const std::string& error() const noexcept { return error_; }
  int socket_error() const noexcept { return socket_error_; }  // errno of a failed socket call
  SSL* native() const noexcept { return ssl_; }

 private:
  TlsSession(SSL* ssl, bool client) : ssl_(ssl), client_(client) {}
  TlsResult outcome(int result, bool handshaking);

  SSL* ssl_;
  std::string_view server_name_;  // client role: for the error message of a name mismatch
  std::string error_;
  int socket_error_ = 0;
  bool client_;
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

// An OpenSSL object freed by its own function: OpenSslOwned<X509, X509_free>.
template <typename Object, void (*release)(Object*)>
struct OpenSslRelease {
  void operator()(Object* object) const noexcept { release(object); }
};
template <typename Object, void (*release)(Object*)>
using OpenSslOwned = std::unique_ptr<Object, OpenSslRelease<Object, release>>;

// OpenSSL's reason for the last error of this thread ("unknown error" when it has none).
std::string tls_last_error_reason();
// A certificate's or an OCSP response's time as Unix seconds (0 when it does not parse).
std::int64_t tls_unix_time(const ASN1_TIME* time);

}  // namespace pylon::net
