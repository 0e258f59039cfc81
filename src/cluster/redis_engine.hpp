// The Redis cluster engine (issue 8, docs/cluster.md): topics shared between pylon instances
// through Redis pub/sub, with hiredis running asynchronously on the engine loop (no thread of
// its own, no blocking call).
//
// Two connections: a subscriber (SUBSCRIBE prefix+topic when local interest begins,
// UNSUBSCRIBE when it ends; incoming messages go to `deliver`; and always prefix+"#control",
// which no topic can name since '#' is outside the topic charset: messages there go to `control`)
// and a publisher (PUBLISH, pipelined in call order; SELECT db). Both AUTH when the URL has a
// password. When either fails the engine is unavailable until both are back and every channel is
// subscribed again; it reconnects with exponential backoff and jitter. Publishing while unavailable
// drops the message (the server refuses it before calling). A publisher that Redis does not read
// fast enough is bounded: past `max_pending_bytes` of unsent commands the engine reports itself
// unavailable until the backlog halves.
//
// The server assembles it (server.cpp, with the default limits; tests pass tighter ones).
// Threads: as ClusterEngine — everything on the engine loop except available(); destroy the
// engine on that loop's thread (or after the loop stopped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "pubsub/cluster_engine.hpp"
#include "pylon/metrics.hpp"

namespace pylon::net {
class EventLoop;
}

namespace pylon::cluster {

struct RedisOptions {
  // redis://[:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]
  std::string url = "redis://127.0.0.1:6379";
  std::string prefix = "pylon:";  // channel = prefix + topic, so clusters can share one Redis
};

struct RedisEngineLimits {
  std::uint64_t initial_backoff_ms = 100;   // first retry after a failure, doubling...
  std::uint64_t max_backoff_ms = 5000;      // ...up to this; each delay is jittered to [d/2, d]
  std::uint64_t connect_timeout_ms = 5000;  // TCP connect + AUTH/SELECT/PING answered
  std::size_t max_pending_bytes = 8 * 1024 * 1024;  // unsent publisher bytes before "unavailable"
  std::size_t max_pending_replies = 100000;         // PUBLISHes Redis has not answered yet
};

// Throws std::invalid_argument with a reason when the URL is malformed (start-up error).
std::unique_ptr<pubsub::ClusterEngine> make_redis_engine(
    net::EventLoop& loop, const RedisOptions& options, pubsub::DeliverFunction deliver,
    pubsub::ActiveTopicsFunction active_topics, pubsub::ControlFunction control,
    MetricsRegistry& metrics, const RedisEngineLimits& limits = {});

}  // namespace pylon::cluster
