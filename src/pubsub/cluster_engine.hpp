// A cluster engine carries topics between pylon instances (DESIGN.md: "several instances sharing
// topics"). The memory engine is no engine at all: publishes stay on this instance. The Redis
// engine (redis_engine.hpp) maps each topic to a Redis pub/sub channel.
//
// Threads: an engine lives on one loop (the engine loop, worker 0's). Every method except
// available() runs on that loop's thread; the server posts to it. Messages from other instances
// come back through the `deliver` callback given at creation, also on that thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/metrics.hpp"
#include "ws/frame.hpp"

namespace pylon::net {
class EventLoop;
}

namespace pylon::pubsub {

class ClusterEngine {
 public:
  virtual ~ClusterEngine() = default;

  // Any thread: can publishes reach the other instances right now? While false, a publish is
  // refused (engine_unavailable) rather than delivered to this instance alone.
  virtual bool available() const noexcept = 0;

  // This instance gained its first subscriber of topic / lost its last one.
  virtual void subscribe(std::string_view topic) = 0;
  virtual void unsubscribe(std::string_view topic) = 0;

  // A message published on this instance (already delivered to its local subscribers): send it
  // to the other instances, in call order (pipelined).
  virtual void publish(std::string_view topic, ws::Opcode opcode, std::string_view payload) = 0;
};

// Delivers a message published on another instance to this instance's subscribers.
using DeliverFunction =
    std::function<void(std::string_view topic, ws::Opcode opcode, std::string_view payload)>;
// The topics this instance has subscribers for, to re-subscribe after a reconnect.
using ActiveTopicsFunction = std::function<std::vector<std::string>()>;

struct RedisOptions {
  // redis://[:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]
  std::string url = "redis://127.0.0.1:6379";
  std::string prefix = "pylon:";  // channel = prefix + topic, so clusters can share one Redis
};

// Throws std::invalid_argument with a reason when the URL is malformed (start-up error).
std::unique_ptr<ClusterEngine> make_redis_engine(net::EventLoop& loop, const RedisOptions& options,
                                                 DeliverFunction deliver,
                                                 ActiveTopicsFunction active_topics,
                                                 MetricsRegistry& metrics);

}  // namespace pylon::pubsub
