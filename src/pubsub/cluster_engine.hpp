// A cluster engine carries topics between pylon instances (DESIGN.md: "several instances sharing
// topics"). The memory engine is no engine at all: publishes stay on this instance. An engine
// is made by its own layer (cluster/redis_engine.hpp maps each topic to a Redis pub/sub
// channel) and handed to the server, which assembles it (server.cpp); pubsub knows only this
// interface.
//
// Threads: an engine lives on one loop (the engine loop, worker 0's). Every method except
// available() runs on that loop's thread; the server posts to it. Messages from other instances
// come back through the `deliver` callback given at creation, also on that thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ws/frame.hpp"

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

  // A control message for the server of every other instance (App::send_to_cluster), on a
  // channel of the engine's own that no topic maps to; they get it through `control`.
  virtual void send_control(std::string_view message) = 0;
};

// Delivers a message published on another instance to this instance's subscribers.
using DeliverFunction =
    std::function<void(std::string_view topic, ws::Opcode opcode, std::string_view payload)>;
// Hands a control message from another instance to this instance's server.
using ControlFunction = std::function<void(std::string_view message)>;
// The topics this instance has subscribers for, to re-subscribe after a reconnect.
using ActiveTopicsFunction = std::function<std::vector<std::string>()>;

}  // namespace pylon::pubsub
