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

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pubsub/history.hpp"
#include "pylon/presence.hpp"
#include "ws/frame.hpp"

namespace pylon::pubsub {

// A publication for a topic whose history the engine keeps: its bytes are head + label + the
// offset the engine assigns + tail (pylon::OffsetEnvelope; an empty label splices nothing).
struct HistoryAppend {
  std::string topic;
  ws::Opcode opcode = ws::Opcode::text;
  std::string head, label, tail;
  HistoryPolicy policy;
};

struct HistoryEntry {
  std::uint64_t offset = 0;
  ws::Opcode opcode = ws::Opcode::text;
  std::string payload;
};

// A topic's history as the engine read it: its latest offset and epoch and, when asked, the kept
// publications from the asked offset on (oldest first; latest-only streams: the latest one).
struct HistoryRead {
  std::uint64_t top = 0;
  std::string epoch;
  std::vector<HistoryEntry> entries;
};

// Engine loop. offset 0: Redis refused to store it (an error answer); else where it is stored.
using AppendDone = std::function<void(std::uint64_t offset, std::string_view epoch)>;
using ReadDone = std::function<void(HistoryRead& read)>;
// Engine loop. members null: the engine could not read them (Redis unreachable).
using PresenceDone = std::function<void(const PresenceMembers* members)>;

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

  // Topics with history (docs/cluster.md "History"). append stores the publication, gives it the
  // next offset and publishes it to every instance, this one included (its local subscribers get
  // it through `deliver`, in offset order with everyone else's). One not answered when the
  // connection drops is kept and sent again once it is back; it is stored once. done runs once
  // it is stored (or refused).
  virtual void append(HistoryAppend publication, AppendDone done) = 0;
  // Reads topic's position and, given since, its kept publications from since on. The stream is
  // created (new epoch) when it has none, so the position answered holds.
  virtual void read(std::string topic, const HistoryPolicy& policy,
                    std::optional<std::uint64_t> since, ReadDone done) = 0;

  // Presence (docs/cluster.md "Presence"): member is listed in topic's presence on every instance
  // until it leaves, or until ttl_ms after this instance last refreshed it (the engine refreshes
  // its own members while it runs, so a crashed instance's vanish within the TTL).
  virtual void presence_join(std::string topic, PresenceMember member, std::uint64_t ttl_ms) = 0;
  virtual void presence_leave(std::string topic, std::string client) = 0;
  virtual void read_presence(std::string topic, PresenceDone done) = 0;
};

// Delivers a message published on another instance to this instance's subscribers; on a topic
// with history (offset > 0) every publication, this instance's too, in offset order without gaps.
using DeliverFunction = std::function<void(std::string_view topic, ws::Opcode opcode,
                                           std::string_view payload, std::uint64_t offset)>;
// Hands a control message from another instance to this instance's server.
using ControlFunction = std::function<void(std::string_view message)>;
// The topics this instance has subscribers for, to re-subscribe after a reconnect.
using ActiveTopicsFunction = std::function<std::vector<std::string>()>;

}  // namespace pylon::pubsub
