// pylon's WebSocket client: connections to ws:// and wss:// (TLS, OpenSSL) servers on pylon's own
// engine, for load tests, bench, integration tests and services that talk to other WebSocket
// services.
//
//   pylon::ClientLoop loop;
//   loop.connect("ws://127.0.0.1:8080/ws/echo", {
//       .on_open = [](pylon::WebSocketClient& ws) { ws.send("hello"); },
//       .on_message = [&](pylon::WebSocketClient& ws, std::string_view text, pylon::MessageKind) {
//         ws.close(1000, "done");
//       },
//       .on_close = [&](pylon::WebSocketClient&, std::uint16_t code, std::string_view) {
//       loop.stop(); },
//   });
//   loop.run();
//
// Ownership: a ClientLoop owns one event loop (epoll, timers, one receive buffer) and every
// client created on it. connect() returns a handle that stays valid until the client is done:
// after on_close or on_error returns with reconnecting() false, or after close() when the client
// was not open (then no event follows). Destroying the loop frees its clients without events.
//
// Threads: a loop runs on the thread that calls run() (several loops on several threads scale a
// load test; they share nothing). connect() and every WebSocketClient call belong to that thread,
// also before run() starts; other threads use post(). Handlers run on the loop's thread, never
// concurrently for one loop. Calling close() inside a handler only marks the client: it is freed
// after the loop iteration (STYLE.md rule 12).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pylon/app.hpp"  // SendStatus, MessageKind (shared with the server API)

namespace pylon {

class ClientLoop;
class ClientTimer;
class WebSocketClient;

// Reconnecting after a drop or a failed attempt: exponential backoff with jitter. The delay
// starts again from initial_delay after every successful open; on_open fires for each one. A
// handshake refused with 429 or 503 and a Retry-After (pylon's abuse limits and admission pace
// send one) waits at least that many seconds, at most an hour, whatever the backoff says.
struct ReconnectOptions {
  bool enabled = false;
  double initial_delay = 0.5;  // seconds
  double max_delay = 30;       // seconds
  double multiplier = 2;
  double jitter = 0.2;  // each delay is shortened by a random fraction up to this (0..1)
};

// permessage-deflate (RFC 7692) in the client role. Off by default: a zlib context per connection
// costs memory (below), which a load test with 50,000 connections must choose to pay.
//
// Memory of a connection that negotiated it (zlib's formulas, MessageDeflater/MessageInflater::
// memory_estimate in src/ws/permessage_deflate.hpp), allocated on open and released when the
// connection ends; connections that did not negotiate it allocate nothing:
//   compressor   (1 << (window_bits + 2)) + (1 << (memory_level + 9)) + ~6 KiB:
//                15 bits, level 8: ~262 KiB; 12 bits, level 5: ~38 KiB; 9 bits, level 1: ~9 KiB
//   decompressor (1 << window_bits) + ~7 KiB: 15 bits: ~39 KiB; 12 bits: ~11 KiB
// plus the buffers of the message being compressed or inflated (reused; given back above 64 KiB).
struct CompressionOptions {
  bool enabled = false;
  // Offer server_no_context_takeover and client_no_context_takeover: each message is compressed
  // on its own in both directions (worse ratio on streams of similar messages, the same memory
  // while compressing, but no window carried between messages on the server's side).
  bool no_context_takeover = false;
  // 8..15: the largest LZ77 window in both directions: offered as server_max_window_bits when
  // below 15 (the server's compressor, so our decompressor's memory), and the limit of our own
  // compressor's window (also limited by the client_max_window_bits the server agrees).
  std::uint8_t max_window_bits = 15;
  int memory_level = 8;        // 1..9: our compressor's memory (zlib's memLevel); 8 is zlib's
  std::size_t threshold = 64;  // messages shorter than this are sent uncompressed
};

// TLS for wss:// URLs (ignored for ws://). TLS 1.2 or 1.3; the handshake runs in the loop like
// the rest (non-blocking), within handshake_timeout. Errors reach on_error as one line starting
// with "tls: " ("tls: certificate verify failed: unable to get local issuer certificate",
// "tls: certificate verify failed: hostname mismatch (the certificate is not valid for x)",
// "tls: handshake failed: wrong version number", "tls: the server closed the connection during
// the TLS handshake").
//
// One OpenSSL context (SSL_CTX) per distinct (verify, ca_file), shared by every connection and
// loop of the process and built by make_client_profile, where the trust store is read (the
// system store here, 144 CAs: ~45 ms and ~770 KiB, once per process).
//
// Memory per wss:// connection while its socket is open, measured in the client process with
// OpenSSL 3.0.19 through Nginx (TLS 1.3, ECDSA P-256; 1,000 connections, OpenSSL's allocations
// counted): ~54 KiB, against ~1 KiB for ws://. About 33 KiB are OpenSSL's record buffers (read
// and write, ~16.5 KiB each), kept for the life of the connection so that the message path
// allocates nothing (SSL_MODE_RELEASE_BUFFERS would free them between reads and writes, down to
// ~22 KiB, for a malloc and free per message); the rest is the SSL object, its session and the
// server's certificate chain. Budget 10,000 wss:// connections at ~550 MiB. Nothing is held while
// a client waits to reconnect.
struct TlsOptions {
  // Verify the server's certificate chain and name. Off only for test rigs: without it anyone on
  // the path can read and change the traffic.
  bool verify = true;
  // A PEM file of CA certificates to trust instead of the system store (e.g. deploy/tls's ca.pem).
  // Empty: the system store (the file named by SSL_CERT_FILE, else OpenSSL's default cert.pem).
  std::string ca_file;
  // The name sent as SNI and checked against the certificate; empty: the URL's host ("localhost",
  // "127.0.0.1": an IP address is checked as such and sent as no SNI, RFC 6066 §3).
  std::string server_name;
};

// The payload of the heartbeat's pings (ClientOptions::ping_interval), which the server's pongs
// echo: on_pong tells them from the answers to the application's own ping() by it.
inline constexpr std::string_view kHeartbeatPing = "pylon heartbeat";

struct ClientOptions {
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::vector<std::string> subprotocols;  // Sec-WebSocket-Protocol offer, preferred first
  // Numeric address to bind before connecting (e.g. 127.0.0.2): each source address has its own
  // range of ephemeral ports, so load tests beyond ~28,000 connections to one server use several.
  std::string source_address;
  double connect_timeout = 10;    // seconds for the TCP connect
  double handshake_timeout = 10;  // seconds from connected to the 101 response (TLS included)
  double close_timeout = 5;       // seconds to wait for the server's close and its EOF
  // Heartbeat: notices a server that is gone without a FIN (host down, NAT or proxy timeout,
  // a server that stopped reading), which TCP alone reports only after minutes or never. While
  // open, when nothing has come from the server for ping_interval seconds the client sends a
  // ping (payload kHeartbeatPing); when nothing at all arrives within pong_timeout after it, the
  // connection fails: on_error "heartbeat: no pong within 10 s", then on_close with 1006, then a
  // reconnect when enabled. Any bytes from the server count as a sign of life, so a busy
  // connection sends no pings; so do bytes of ours the kernel could send again after a full send
  // buffer (the server acknowledged them). Detection takes at most ping_interval + pong_timeout
  // after the last sign of life, plus up to two of the loop's 100 ms timer ticks.
  //
  // Off (0) by default: a pylon server pings its clients every 25 s itself, and a load test with
  // 50,000 idle connections must not add pings the server would count as its load. Turn it on
  // for long-lived connections, below the idle timeout of every proxy and NAT on the path
  // (Nginx's proxy_read_timeout is 60 s): e.g. ping_interval = 20, pong_timeout = 10.
  double ping_interval = 0;  // seconds of silence before a ping; 0: no heartbeat, else >= 0.1
  double pong_timeout = 10;  // seconds to wait for the pong (or anything); >= 0.1
  std::size_t max_message_size = 16u << 20;  // larger messages fail the connection with 1009
  std::size_t max_backpressure = 1u << 20;   // bytes queued before sends are dropped
  ReconnectOptions reconnect;
  CompressionOptions compression;
  TlsOptions tls;
};

// Events of one client. Views are valid during the call only.
struct ClientHandlers {
  // The handshake succeeded (again, after each reconnect).
  std::function<void(WebSocketClient&)> on_open;
  std::function<void(WebSocketClient&, std::string_view message, MessageKind kind)> on_message;
  // A ping from the server; the pong has already been sent (RFC 6455 §5.5.2).
  std::function<void(WebSocketClient&, std::string_view payload)> on_ping;
  // Every pong: answers to ping(), to the heartbeat (payload kHeartbeatPing) and unsolicited ones
  // (RFC 6455 §5.5.3 allows them; they are never an error).
  std::function<void(WebSocketClient&, std::string_view payload)> on_pong;
  // The end of an opened connection: the code of the server's close frame (1005 when it had
  // none), or ours when we failed the connection (1002, 1007, 1009 ...), or 1006 when the
  // connection dropped without a close frame.
  std::function<void(WebSocketClient&, std::uint16_t code, std::string_view reason)> on_close;
  // What went wrong: a failed connect, TLS or WebSocket handshake ("handshake: HTTP 503 Service
  // Unavailable", "tls: certificate verify failed: ..."), a timeout, a protocol violation by the
  // server, a TLS error on an open connection, or a heartbeat without answer ("heartbeat: no pong
  // within 10 s"); on an open connection on_close follows.
  std::function<void(WebSocketClient&, std::string_view error)> on_error;
  std::function<void(WebSocketClient&)> on_drain;  // the send backlog has emptied
};

// A validated URL + handlers + options, immutable: load tests share one among all connections
// (any thread; it is reference-counted).
struct ClientProfile;
// Throws std::invalid_argument with a one-line reason for a bad URL ("url: missing host"), bad
// headers or subprotocols, a bad source address, or TLS options that cannot work ("tls: ca_file:
// cannot load /x.pem: ..."). Builds or reuses the TLS context of a wss:// URL: call it at start-up,
// not on a loop thread (it may read the trust store).
std::shared_ptr<const ClientProfile> make_client_profile(std::string_view url,
                                                         ClientHandlers handlers,
                                                         ClientOptions options = {});

namespace client {
class LoopState;
}  // namespace client

class ClientLoop {
 public:
  ClientLoop();
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  // Starts connecting right away (no event fires before connect returns).
  WebSocketClient& connect(std::shared_ptr<const ClientProfile> profile);
  WebSocketClient& connect(std::string_view url, ClientHandlers handlers,
                           ClientOptions options = {});

  // Runs the loop on the calling thread until stop(). A loop runs once: after stop() it is over.
  void run();
  void stop() noexcept;                       // any thread
  void post(std::function<void()> task);      // any thread: runs task on the loop's thread
  std::size_t client_count() const noexcept;  // clients not yet done

 private:
  friend class ClientTimer;
  std::unique_ptr<client::LoopState> state_;
};

// A precise one-shot timer on a ClientLoop, for paced sends (open-loop load, connection ramps)
// where the loop's coarse timeouts (100 ms ticks) would not do. It is a timerfd in the loop's
// epoll set: it fires within the loop's iteration, on the loop's thread, with the clock of
// monotonic_ns(). Owned by the caller; loop thread only; destroy it before its loop.
class ClientTimer {
 public:
  ClientTimer(ClientLoop& loop, std::function<void()> on_fire);
  ~ClientTimer();
  ClientTimer(const ClientTimer&) = delete;
  ClientTimer& operator=(const ClientTimer&) = delete;

  // Fires once at `deadline_ns` of monotonic_ns() (at once when it has passed); re-arming moves
  // the deadline. on_fire may re-arm the timer.
  void arm_at(std::uint64_t deadline_ns);
  void disarm();
  bool armed() const noexcept;

  // CLOCK_MONOTONIC in nanoseconds: the clock of arm_at, for timestamps to compare against it.
  static std::uint64_t monotonic_ns() noexcept;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// One client connection (and its reconnects). Created by ClientLoop::connect; owned by the loop.
class WebSocketClient {
 public:
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Dropped unless open; dropped when the backlog would pass max_backpressure; queued when the
  // kernel did not take everything; otherwise sent (at the end of this loop iteration, corked
  // with everything else sent to this socket in it).
  SendStatus send(std::string_view message, MessageKind kind = MessageKind::text);
  // The same message as `fragments` frames (RFC 6455 §5.4), for tests and peers that care.
  SendStatus send_fragmented(std::string_view message, MessageKind kind, std::size_t fragments);
  SendStatus ping(std::string_view payload = {});  // at most 125 bytes, else dropped
  // Open: starts the closing handshake; on_close follows when the server has answered (or
  // close_timeout passed), and messages that arrive meanwhile are not delivered. Connecting or
  // waiting to reconnect: gives up without an event. In any case no reconnect follows. An
  // invalid close code is sent as 1000; the reason is cut to 123 bytes at a UTF-8 boundary.
  void close(std::uint16_t code = 1000, std::string_view reason = {});

  bool is_open() const noexcept;
  // Inside on_close / on_error: whether a reconnect will follow (close() there prevents it).
  bool reconnecting() const noexcept;
  std::size_t buffered_amount() const noexcept;
  std::string_view subprotocol() const noexcept;  // the server's choice; empty when none
  // The Sec-WebSocket-Extensions the server agreed to (e.g. "permessage-deflate;
  // client_max_window_bits=12"); empty when none. Still set inside on_close; cleared after it.
  std::string_view extensions() const noexcept;
  bool compressed() const noexcept;  // permessage-deflate is in use on this connection
  const ClientProfile& profile() const noexcept;
  ClientLoop& loop() noexcept;
  void* user_data() const noexcept { return user_data_; }
  void set_user_data(void* data) noexcept { user_data_ = data; }

 protected:
  WebSocketClient() = default;
  ~WebSocketClient() = default;

 private:
  void* user_data_ = nullptr;
};

}  // namespace pylon
