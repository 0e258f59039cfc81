// Native TLS on a server connection (tls_cert): the handshake, reading records, and the end of
// the TLS state. Part of Connection (connection.hpp); writing goes through with_transport.
#include <openssl/ssl.h>

#include "obs/log.hpp"
#include "server/connection.hpp"
#include "server/worker.hpp"

namespace pylon::detail {

void Connection::continue_tls_handshake() {
  const net::TlsResult result = tls()->session->handshake();
  switch (result.status) {
    case net::TlsStatus::done:
      return tls_established();
    case net::TlsStatus::want_read:
    case net::TlsStatus::want_write:
      tls()->wants_write = result.status == net::TlsStatus::want_write;
      return update_interest();
    case net::TlsStatus::closed:
    case net::TlsStatus::failed: {
      // Scanners, clients that distrust the certificate, a port probed with plain HTTP: common
      // and the client's business, so at debug level.
      static obs::LogRateLimit limit(10);
      const std::string remote = remote_address();
      const std::string& error = tls()->session->error();
      limit.log(obs::LogLevel::debug, "TLS handshake failed",
                {{"remote", std::string_view(remote)},
                 {"error", std::string_view(error.empty() ? "tls: closed" : error)}});
      worker().server().counters->tls_handshake(TlsHandshake::failed);
      return destroy();
    }
  }
}

void Connection::tls_established() {
  const ServerMetrics& counters = *worker().server().counters;
  SSL* ssl = tls()->session->native();
  counters.tls_handshake(SSL_session_reused(ssl) == 1 ? TlsHandshake::resumed : TlsHandshake::full);
  counters.tls_handshake_duration.observe_ns(net::EventLoop::monotonic_ns() - tls()->accepted_ns);
  tls()->handshake_certificates.reset();  // the SSL keeps the context it chose
  tls()->wants_write = false;
  tls()->kernel_sends = tls()->session->kernel_sends();
  counters.tls_connections[tls()->kernel_sends ? 1 : 0].add(1);
  worker().tls_handshake_ended();
  update_interest();
  // The request may have come in the same flight as the client's Finished: OpenSSL has read it
  // already, and epoll will not say so.
  read_ready_tls();
}

void Connection::read_ready_tls() {
  auto buffer = worker().loop().receive_buffer();
  net::TlsStatus status = net::TlsStatus::done;
  std::size_t filled = 0;
  do {
    // Records until the buffer is full or OpenSSL has nothing decrypted or read ahead left.
    filled = 0;
    while (filled < buffer.size()) {
      const net::TlsResult result = tls()->session->read(buffer.subspan(filled));
      status = result.status;
      filled += result.bytes;
      if (status != net::TlsStatus::done || !tls()->session->has_buffered()) break;
    }
    if (filled > 0) process_read(buffer.first(filled));
    if (state_ == State::closed) return;
  } while (filled == buffer.size() && tls()->session->has_buffered());
  switch (status) {
    case net::TlsStatus::closed:
    case net::TlsStatus::failed:
      return peer_gone();  // close_notify, EOF, or a corrupt record: the TCP close of plain
    case net::TlsStatus::want_write:
    case net::TlsStatus::want_read:
    case net::TlsStatus::done:
      if (tls()->wants_write != (status == net::TlsStatus::want_write)) {
        tls()->wants_write = status == net::TlsStatus::want_write;
        update_interest();
      }
      return;
  }
}

void Connection::end_tls() noexcept {
  if (tls_handshaking()) {
    tls()->handshake_certificates.reset();
    worker().tls_handshake_ended();
  } else {
    worker().server().counters->tls_connections[tls()->kernel_sends ? 1 : 0].add(-1);
  }
}

}  // namespace pylon::detail
