#include "net/tls.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <new>

namespace pylon::net {
namespace {

// ---------------------------------------------------------------------------------------------
// The client role's socket BIO writes with MSG_NOSIGNAL: OpenSSL's own uses write(), which raises
// SIGPIPE when the peer has reset the connection, and a library must not kill its host process
// (the plain path uses MSG_NOSIGNAL too). The descriptor is the connection's; the BIO never
// closes it.

int socket_of(BIO* bio) {
  return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
}

int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t written =
      ::send(socket_of(bio), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (written < 0 && (errno == EAGAIN || errno == EINTR)) BIO_set_retry_write(bio);
  return static_cast<int>(written);
}

int bio_read(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t received = ::recv(socket_of(bio), data, static_cast<std::size_t>(size), 0);
  if (received == 0) BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
  if (received < 0 && (errno == EAGAIN || errno == EINTR)) BIO_set_retry_read(bio);
  return static_cast<int>(received);
}

long bio_control(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      // With SSL_OP_IGNORE_UNEXPECTED_EOF, OpenSSL asks this to tell an EOF from an error.
      return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* nosignal_socket_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* created = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pylon socket");
    if (created == nullptr) throw std::bad_alloc();
    BIO_meth_set_write(created, bio_write);
    BIO_meth_set_read(created, bio_read);
    BIO_meth_set_ctrl(created, bio_control);
    return created;
  }();
  return method;
}

bool is_ip_address(const std::string& name) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), address) == 1 ||
         inet_pton(AF_INET6, name.c_str(), address) == 1;
}

// An SSL on fd through bio (the SSL owns both from here); throws std::bad_alloc.
SSL* new_ssl(SSL_CTX* context, BIO* bio) {
  SSL* ssl = bio != nullptr ? SSL_new(context) : nullptr;
  if (ssl == nullptr) {
    BIO_free(bio);
    throw std::bad_alloc();
  }
  SSL_set_bio(ssl, bio, bio);
  return ssl;
}

}  // namespace

std::string tls_last_error_reason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "unknown error";
}

std::int64_t tls_unix_time(const ASN1_TIME* time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(time, &parts) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&parts));
}

// ---------------------------------------------------------------------------------------------
// TlsSession

std::unique_ptr<TlsSession> TlsSession::connect(SSL_CTX* context, int fd,
                                                const std::string& server_name, bool verify) {
  BIO* bio = BIO_new(nosignal_socket_method());
  if (bio != nullptr) {
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
    BIO_set_init(bio, 1);
  }
  std::unique_ptr<TlsSession> session(new TlsSession(new_ssl(context, bio), true));
  SSL* ssl = session->ssl_;
  session->server_name_ = server_name;
  SSL_set_connect_state(ssl);
  const bool ip = is_ip_address(server_name);
  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
  if (!ip) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (verify) {
    // RFC 6125: the name must be in the certificate's subjectAltName (an IP address as such).
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ip)
      X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
    else
      SSL_set1_host(ssl, server_name.c_str());
  }
  return session;
}

std::unique_ptr<TlsSession> TlsSession::accept(SSL_CTX* context, int fd) {
  std::unique_ptr<TlsSession> session(
      new TlsSession(new_ssl(context, BIO_new_socket(fd, BIO_NOCLOSE)), false));
  SSL_set_accept_state(session->ssl_);
  return session;
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);
}

TlsResult TlsSession::handshake() {
  // The error queue is per thread and shared by every connection of the loop: start clean, or
  // SSL_get_error may report another connection's failure.
  ERR_clear_error();
  const int result = SSL_do_handshake(ssl_);
  return result == 1 ? TlsResult{TlsStatus::done} : outcome(result, true);
}

TlsResult TlsSession::read(std::span<std::uint8_t> buffer) {
  ERR_clear_error();
  const int size = static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX));
  const int received = SSL_read(ssl_, buffer.data(), size);
  if (received > 0) return {TlsStatus::done, static_cast<std::size_t>(received)};
  return outcome(received, false);
}

TlsResult TlsSession::write(const char* data, std::size_t size) {
  // SSL_MODE_ENABLE_PARTIAL_WRITE: each call returns after one record went out.
  std::size_t taken = 0;
  while (taken < size) {
    ERR_clear_error();
    const int chunk = static_cast<int>(std::min<std::size_t>(size - taken, INT_MAX));
    const int written = SSL_write(ssl_, data + taken, chunk);
    if (written <= 0) {
      TlsResult result = outcome(written, false);
      result.bytes = taken;
      return result;
    }
    taken += static_cast<std::size_t>(written);
  }
  return {TlsStatus::done, taken};
}

bool TlsSession::has_buffered() const noexcept {
  return SSL_has_pending(ssl_) == 1;
}

bool TlsSession::kernel_sends() const noexcept {
  return BIO_get_ktls_send(SSL_get_wbio(ssl_)) != 0;
}

void TlsSession::shutdown() noexcept {
  // Best effort: close_notify goes out if the socket takes it; the peer's is not awaited.
  if (broken_ || SSL_is_init_finished(ssl_) != 1) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

TlsResult TlsSession::outcome(int result, bool handshaking) {
  const int saved_errno = errno;
  const char* const peer = client_ ? "the server" : "the client";
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ:
      return {TlsStatus::want_read};
    case SSL_ERROR_WANT_WRITE:
      return {TlsStatus::want_write};
    case SSL_ERROR_ZERO_RETURN:
      if (handshaking)
        error_ = std::string("tls: ") + peer + " closed the connection during the TLS handshake";
      return {TlsStatus::closed};
    case SSL_ERROR_SYSCALL:
      broken_ = true;
      if (ERR_peek_error() == 0 && saved_errno == 0) {  // EOF where OpenSSL wanted more
        if (handshaking)
          error_ = std::string("tls: ") + peer + " closed the connection during the TLS handshake";
        return {TlsStatus::closed};
      }
      socket_error_ = saved_errno;
      error_ = std::string("tls: ") + std::strerror(saved_errno);
      break;
    default: {
      broken_ = true;
      const long verified = client_ ? SSL_get_verify_result(ssl_) : X509_V_OK;
      if (handshaking && verified != X509_V_OK) {
        error_ = std::string("tls: certificate verify failed: ") +
                 X509_verify_cert_error_string(verified);
        if (verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH)
          error_ += " (the certificate is not valid for " + std::string(server_name_) + ")";
      } else {
        error_ = (handshaking ? "tls: handshake failed: " : "tls: ") + tls_last_error_reason();
        // The usual cause: wss:// to a port that speaks plain HTTP (a record header that is not).
        if (client_ && ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_WRONG_VERSION_NUMBER)
          error_ += " (is this port TLS?)";
      }
      break;
    }
  }
  ERR_clear_error();
  return {TlsStatus::failed};
}

int TlsTransport::send(const char* data, std::size_t size, std::size_t& taken) const {
  const TlsResult result = tls.write(data, size);
  taken = result.bytes;
  switch (result.status) {
    case TlsStatus::failed:
      return tls.socket_error() != 0 ? tls.socket_error() : EPROTO;
    case TlsStatus::closed:
      return EPIPE;
    default:
      return 0;
  }
}

}  // namespace pylon::net
