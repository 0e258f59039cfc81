#include "server/tls_certificates.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <string_view>

#include "net/tls.hpp"
#include "obs/log.hpp"

namespace pylon::detail {
namespace {

// TLS 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and 1.1); ECDHE over the two groups every
// current client has (Mozilla "intermediate").
constexpr const char* kGroups = "X25519:P-256";
constexpr unsigned char kSessionContext[] = "pylon";

// A failed OpenSSL call on the loading thread: the key, what failed and OpenSSL's reason.
[[noreturn]] void reject(std::string key, const std::string& what) {
  std::string reason = what + ": " + net::tls_last_error_reason();
  ERR_clear_error();
  throw ConfigError(std::move(key), reason);
}

// RFC 7301: WebSocket over TLS is HTTP/1.1 (RFC 6455 §4.1); a client that offers ALPN without it
// still gets the connection, with no protocol selected.
int select_http11(SSL*, const unsigned char** out, unsigned char* out_length,
                  const unsigned char* offered, unsigned int offered_length, void*) {
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof kHttp11, offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* new_context(const Config& config) {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (context == nullptr) reject("tls_cert", "cannot create a TLS context");
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION);
  // Renegotiation (TLS 1.2) would make reads write and writes read, and lets a client make the
  // server redo its most expensive step at will. An EOF without close_notify ends the connection
  // like a TCP close: WebSocket's closing handshake says whether the messages were complete.
  std::uint64_t options =
      SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION;
  if (config.tls_ktls) options |= SSL_OP_ENABLE_KTLS;  // OpenSSL falls back when the kernel says no
  SSL_CTX_set_options(context, options);
  // The outbox offers what the kernel did not take again from its backlog, which moves as it
  // grows, one record at a time. RELEASE_BUFFERS: an idle connection gives its 2 x 16 KiB record
  // buffers back to OpenSSL's allocator between records.
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                SSL_MODE_RELEASE_BUFFERS);
  // One recv() takes every record the socket has (the connection reads until has_buffered is
  // false), instead of one call per record header and one per body.
  SSL_CTX_set_read_ahead(context, 1);
  if (SSL_CTX_set_cipher_list(context, config.tls_ciphers.c_str()) != 1) {
    SSL_CTX_free(context);
    reject("tls_ciphers", "no cipher OpenSSL knows in \"" + config.tls_ciphers + "\"");
  }
  SSL_CTX_set1_groups_list(context, kGroups);
  SSL_CTX_set_dh_auto(context, 1);  // the DHE suites of the list, with RFC 7919 groups
  // Resumption by tickets only: stateless, so resuming costs no memory per session and works on
  // every loop (they share the context). Their keys are the server's TicketKeys (load()).
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_id_context(context, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_num_tickets(context, 1);  // TLS 1.3 sends two by default: one is enough here
  SSL_CTX_set_alpn_select_cb(context, select_http11, nullptr);
  return context;
}

// "CERT_FILE" or "CERT_FILE:KEY_FILE" of tls_sni_certs.
std::pair<std::string, std::string> split_pair(const std::string& entry) {
  const std::size_t colon = entry.find(':');
  if (colon == std::string::npos) return {entry, entry};
  if (entry.find(':', colon + 1) != std::string::npos || colon == 0 || colon + 1 == entry.size())
    throw ConfigError("tls_sni_certs", "\"" + entry + "\" is not CERT_FILE or CERT_FILE:KEY_FILE");
  return {entry.substr(0, colon), entry.substr(colon + 1)};
}

TlsCertificates::Certificate load_one(const Config& config, const std::string& key_name,
                                      const std::string& certificate_file,
                                      const std::string& key_file) {
  SSL_CTX* context = new_context(config);
  const auto fail = [&](std::string key, const std::string& what) {
    SSL_CTX_free(context);
    reject(std::move(key), what);
  };
  const std::string& cert_key = key_name;
  const std::string private_key = key_name == "tls_cert" ? "tls_key" : key_name;
  if (SSL_CTX_use_certificate_chain_file(context, certificate_file.c_str()) != 1)
    fail(cert_key, "cannot load the certificate " + certificate_file);
  if (SSL_CTX_use_PrivateKey_file(context, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail(private_key, "cannot load the private key " + key_file);
  if (SSL_CTX_check_private_key(context) != 1)
    fail(private_key, "the private key " + key_file + " does not match " + certificate_file);
  std::unique_ptr<OcspStaple> ocsp;
  if (config.tls_ocsp_stapling) {
    ocsp = std::make_unique<OcspStaple>(context, certificate_file);
    if (ocsp->stapled()) ocsp->install(context);
  }
  return {context, certificate_file,
          net::tls_unix_time(X509_get0_notAfter(SSL_CTX_get0_certificate(context))),
          std::move(ocsp)};
}

// What each certificate staples, or why not: at start-up and after each reload.
void log_staples(const TlsCertificates& loaded) {
  for (const auto& certificate : loaded.certificates()) {
    const OcspStaple* ocsp = certificate.ocsp.get();
    if (ocsp == nullptr) continue;
    if (!ocsp->stapled()) {
      obs::log(obs::LogLevel::warn, "OCSP response not stapled",
               {{"certificate", std::string_view(certificate.file)},
                {"file", std::string_view(ocsp->file())},
                {"reason", std::string_view(ocsp->problem())}});
      continue;
    }
    // A revoked certificate is served (the files say so) with the response that says it.
    obs::log(ocsp->status() == "good" ? obs::LogLevel::info : obs::LogLevel::error,
             "OCSP response stapled",
             {{"certificate", std::string_view(certificate.file)},
              {"status", ocsp->status()},
              {"next_update", ocsp->next_update()}});
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TlsCertificates

std::shared_ptr<const TlsCertificates> TlsCertificates::load(const Config& config,
                                                             TicketKeys& ticket_keys) {
  std::shared_ptr<TlsCertificates> loaded(new TlsCertificates());
  loaded->entries_.push_back(load_one(config, "tls_cert", config.tls_cert,
                                      config.tls_key.empty() ? config.tls_cert : config.tls_key));
  for (const std::string& entry : config.tls_sni_certs) {
    const auto [certificate, key] = split_pair(entry);
    loaded->entries_.push_back(load_one(config, "tls_sni_certs", certificate, key));
  }
  for (const Certificate& certificate : loaded->entries_) ticket_keys.install(certificate.context);
  // Only the context a handshake starts with is asked for the name (it lives as long as the set:
  // a handshake holds the set until it ends).
  SSL_CTX_set_tlsext_servername_callback(loaded->context(), &TlsCertificates::select_by_name);
  SSL_CTX_set_tlsext_servername_arg(loaded->context(), loaded.get());
  return loaded;
}

TlsCertificates::~TlsCertificates() {
  // Connections that still use a context hold a reference of their own (SSL_new, SSL_set_SSL_CTX).
  for (const Certificate& certificate : entries_) SSL_CTX_free(certificate.context);
}

int TlsCertificates::select_by_name(SSL* ssl, int*, void* self) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI (an IP address): the default
  // The first certificate valid for the name, the default first (it is in use already).
  const auto& entries = static_cast<const TlsCertificates*>(self)->entries_;
  for (std::size_t index = 0; index < entries.size(); ++index) {
    X509* certificate = SSL_CTX_get0_certificate(entries[index].context);
    if (X509_check_host(certificate, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1) {
      if (index > 0) SSL_set_SSL_CTX(ssl, entries[index].context);
      break;
    }
  }
  return SSL_TLSEXT_ERR_OK;  // an unknown name gets the default, as a browser expects
}

// ---------------------------------------------------------------------------------------------
// ServerTls

ServerTls::ServerTls(const Config& config, MetricsRegistry& metrics, Counter ticket_key_rotations)
    : config_(config),
      current_(TlsCertificates::load(config, ticket_keys_)),
      reloads_ok_(metrics.counter("pylon_tls_reloads_total",
                                  "Certificate reloads (SIGHUP or changed files).",
                                  {{"result", "ok"}})),
      reloads_failed_(metrics.counter("pylon_tls_reloads_total",
                                      "Certificate reloads (SIGHUP or changed files).",
                                      {{"result", "failed"}})),
      ticket_key_rotations_(ticket_key_rotations) {
  log_staples(*current_);
  // One series per certificate, labelled with its file.
  using Value = double (*)(const TlsCertificates::Certificate&);
  const auto per_certificate = [this](Value value_of) {
    return [this, value_of] {
      std::vector<std::pair<Labels, double>> values;
      for (const auto& certificate : current()->certificates())
        values.push_back({{{"file", certificate.file}}, value_of(certificate)});
      return values;
    };
  };
  metrics.computed("pylon_tls_certificate_expiry_timestamp_seconds",
                   "When each served certificate expires (notAfter), Unix seconds.", "gauge",
                   per_certificate([](const TlsCertificates::Certificate& certificate) {
                     return static_cast<double>(certificate.not_after);
                   }));
  if (config.tls_ocsp_stapling)
    metrics.computed("pylon_tls_ocsp_response_expiry_timestamp_seconds",
                     "When the OCSP response each certificate staples goes stale (nextUpdate), "
                     "Unix seconds; 0: it staples none.",
                     "gauge", per_certificate([](const TlsCertificates::Certificate& certificate) {
                       return static_cast<double>(certificate.ocsp->next_update());
                     }));
}

ServerTls::~ServerTls() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (rotator_.joinable()) rotator_.join();
}

std::shared_ptr<const TlsCertificates> ServerTls::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

bool ServerTls::reload() {
  try {
    std::shared_ptr<const TlsCertificates> loaded = TlsCertificates::load(config_, ticket_keys_);
    std::string expiries;
    for (const auto& certificate : loaded->certificates())
      expiries += (expiries.empty() ? "" : ", ") + certificate.file + " until " +
                  std::to_string(certificate.not_after);
    std::shared_ptr<const TlsCertificates> replaced = loaded;
    {
      std::lock_guard lock(mutex_);
      current_.swap(replaced);
    }
    // The old set goes when its last handshake ends (or here, outside the lock); established
    // connections never needed it.
    reloads_ok_.add();
    obs::log(obs::LogLevel::info, "TLS certificates reloaded",
             {{"certificates", std::string_view(expiries)}});
    log_staples(*loaded);
    return true;
  } catch (const ConfigError& error) {
    reloads_failed_.add();
    obs::log(obs::LogLevel::error, "TLS certificates not reloaded; keeping the running ones",
             {{"error", std::string_view(error.what())}});
    return false;
  }
}

std::vector<std::string> ServerTls::files() const {
  std::vector<std::string> files;
  // A certificate, its key when in a file of its own, and its OCSP response: the responses are
  // refreshed more often than the certificates (they last days, not months).
  const auto add = [&](const std::string& certificate, const std::string& key) {
    files.push_back(certificate);
    if (key != certificate) files.push_back(key);
    if (config_.tls_ocsp_stapling) files.push_back(OcspStaple::file_for(certificate));
  };
  add(config_.tls_cert, config_.tls_key.empty() ? config_.tls_cert : config_.tls_key);
  for (const std::string& entry : config_.tls_sni_certs) {
    const auto [certificate, key] = split_pair(entry);
    add(certificate, key);
  }
  return files;
}

std::string ServerTls::file_signature() const {
  // mtime, size and inode: a file rewritten in place and one renamed over (certbot's symlinks,
  // a Kubernetes secret's ..data swap) both change it; stat() follows the symlinks.
  std::string signature;
  for (const std::string& file : files()) {
    struct stat status {};
    if (::stat(file.c_str(), &status) != 0) {
      signature += "missing;";
      continue;
    }
    signature += std::to_string(status.st_ino) + ':' + std::to_string(status.st_size) + ':' +
                 std::to_string(status.st_mtim.tv_sec) + '.' +
                 std::to_string(status.st_mtim.tv_nsec) + ';';
  }
  return signature;
}

void ServerTls::watch_files() {
  if (config_.tls_watch_interval <= 0) return;
  seen_files_ = file_signature();
  watcher_ = every(config_.tls_watch_interval, [](ServerTls& self) { self.check_files(); });
}

void ServerTls::check_files() {
  // A change seen once is tried once: a half-written pair fails (logged) and the write that
  // completes it changes the signature again.
  if (std::string now = file_signature(); now != seen_files_) {
    seen_files_ = std::move(now);
    reload();
  }
}

void ServerTls::rotate_ticket_keys() {
  rotator_ = every(config_.tls_ticket_key_rotation, [](ServerTls& self) {
    self.ticket_keys_.rotate();
    self.ticket_key_rotations_.add();
  });
}

std::thread ServerTls::every(double interval, void (*work)(ServerTls&)) {
  const auto period = std::chrono::duration<double>(interval);
  return std::thread([this, period, work] {
    std::unique_lock lock(mutex_);
    while (!stop_.wait_for(lock, period, [this] { return stopping_; })) {
      lock.unlock();
      work(*this);
      lock.lock();
    }
  });
}

}  // namespace pylon::detail
