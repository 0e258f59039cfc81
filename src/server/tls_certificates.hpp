// Native TLS of `pylon serve` (docs/security.md "TLS"): the server's certificates and the
// OpenSSL settings every handshake uses; the connections are net::TlsSession (net/tls.hpp).
//
// TlsCertificates is one immutable set, loaded from tls_cert / tls_key / tls_sni_certs: an
// SSL_CTX per certificate (the default first), chosen by the ClientHello's SNI name, with its OCSP
// response when tls_ocsp_stapling is on (server/tls_ocsp.hpp). Loading reads files, so it happens
// at start-up, on the signal thread (SIGHUP) or on the watcher thread, never on a loop.
//
// ServerTls holds the live set and swaps it whole on a reload: a handshake starts with the set of
// its accept() and keeps it until it ends (Connection holds it), live connections keep the SSL
// they have, and a set that fails to load leaves the running one in place (logged). Any thread.
#pragma once

#include <openssl/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pylon/config.hpp"
#include "pylon/metrics.hpp"
#include "server/tls_ocsp.hpp"
#include "server/tls_ticket_keys.hpp"

namespace pylon::detail {

class TlsCertificates {
 public:
  // Throws ConfigError naming the key (tls_cert, tls_key, tls_sni_certs, tls_ciphers); an OCSP
  // response that cannot be stapled is not an error (Certificate::ocsp says why). Every context
  // seals its session tickets with `ticket_keys` (which must outlive the set).
  static std::shared_ptr<const TlsCertificates> load(const Config& config, TicketKeys& ticket_keys);
  ~TlsCertificates();
  TlsCertificates(const TlsCertificates&) = delete;
  TlsCertificates& operator=(const TlsCertificates&) = delete;

  // The default certificate's context: the one a connection starts with.
  SSL_CTX* context() const noexcept { return entries_.front().context; }
  struct Certificate {
    SSL_CTX* context;
    std::string file;
    std::int64_t not_after;            // Unix seconds
    std::unique_ptr<OcspStaple> ocsp;  // null when tls_ocsp_stapling is off
  };
  const std::vector<Certificate>& certificates() const noexcept { return entries_; }

 private:
  TlsCertificates() = default;
  static int select_by_name(SSL* ssl, int* alert, void* self);
  std::vector<Certificate> entries_;  // [0]: tls_cert
};

class ServerTls {
 public:
  // Loads the certificates (ConfigError when they do not load) and registers the TLS series
  // whose values it knows (reloads, certificate and OCSP response expiry).
  // ticket_key_rotations: the server's counter (registered whether or not TLS is on).
  ServerTls(const Config& config, MetricsRegistry& metrics, Counter ticket_key_rotations);
  ~ServerTls();  // stops the watcher
  ServerTls(const ServerTls&) = delete;
  ServerTls& operator=(const ServerTls&) = delete;

  std::shared_ptr<const TlsCertificates> current() const;
  // SIGHUP or a change of the files: reads them again; false (logged) keeps the running set.
  bool reload();
  // Starts a thread that reloads when a file's mtime, size or inode changes (certbot's deploy
  // hook, a Kubernetes secret, a refreshed OCSP response), checked every tls_watch_interval
  // seconds; none when that is 0.
  void watch_files();
  // Starts a thread that rotates the session ticket keys every tls_ticket_key_rotation seconds.
  void rotate_ticket_keys();

 private:
  std::vector<std::string> files() const;
  std::string file_signature() const;

  // Runs `work` every `interval` seconds on a thread of its own until the destructor.
  std::thread every(double interval, void (*work)(ServerTls&));
  void check_files();

  const Config& config_;
  TicketKeys ticket_keys_;  // before current_: its contexts use it
  mutable std::mutex mutex_;
  std::shared_ptr<const TlsCertificates> current_;
  Counter reloads_ok_, reloads_failed_, ticket_key_rotations_;
  std::string seen_files_;  // the watcher thread's: file_signature() when last checked
  std::thread watcher_, rotator_;
  std::condition_variable stop_;
  bool stopping_ = false;  // under mutex_
};

}  // namespace pylon::detail
