// Topic history in Redis for the Redis engine (docs/cluster.md "History"). Per topic a stream
// prefix+"history:"+topic whose entry ids are the offsets ("N-0"), and a hash
// prefix+"history-meta:"+topic holding the latest offset and the epoch. One Lua script per publish
// (the append script) checks the publish's sequence number, takes the next offset, keeps the
// publication (exact MAXLEN: the namespace's history_size), PUBLISHes it with its offset and
// epoch (channel_message.hpp, version 2) and refreshes the keys' TTL, all atomically: channel
// order is offset order. The read script answers a topic's position and its kept publications
// (TTL applied), creating the epoch when the topic has none.
//
// Everything sent here is kept in order until Redis answers: a command unanswered when the
// publisher connection drops is sent again once it is back (an append's instance and sequence
// number make the second one answer the first one's offset instead of storing it twice).
//
// Reads for a subscribe wait until the topic's SUBSCRIBE is in effect, so that whatever follows the
// position they answer comes live. The reads of a topic that wait together (the subscribers of a
// topic recovering at once after a reconnect or a restart) go out as one, from the lowest offset
// any of them asked for, and each gets its own part of the answer. Positioning: per subscribed
// topic the offset last delivered to this instance. A publication past it (messages lost while the
// subscriber link was down, or a SUBSCRIBE that took effect late) holds the live ones back, reads
// the gap from the stream, and delivers it first; a resubscribe after a reconnect reads from there
// at once.
//
// Engine loop only (the RedisEngine owns it; redis_engine.cpp).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/channel_message.hpp"
#include "pubsub/cluster_engine.hpp"
#include "pylon/metrics.hpp"

struct redisAsyncContext;

namespace pylon::cluster {

class RedisHistory {
 public:
  RedisHistory(std::string prefix, const InstanceId& instance,
               const pubsub::DeliverFunction& deliver, MetricsRegistry& metrics);

  // The scripts' text, loaded by the publisher's handshake (SCRIPT LOAD) into the SHA-1 strings.
  static std::string_view append_script() noexcept;
  static std::string_view read_script() noexcept;
  std::string append_sha, read_sha;

  // The publisher connection is ready (scripts loaded): send everything not answered yet.
  void publisher_ready(redisAsyncContext* publisher);
  void publisher_lost() noexcept { publisher_ = nullptr; }

  void append(pubsub::HistoryAppend publication, pubsub::AppendDone done);
  void read(std::string topic, const pubsub::HistoryPolicy& policy,
            std::optional<std::uint64_t> since, pubsub::ReadDone done);

  // Local interest in topic began / ended.
  void track(std::string_view topic);
  void forget(std::string_view topic);
  // Redis confirmed the SUBSCRIBE of topic: the reads that waited for it go out, and after a
  // reconnect what was published while the channel was not subscribed is read from the stream.
  void subscribed(std::string_view topic);
  // The subscriber connection is gone: every channel waits for its SUBSCRIBE again.
  void subscriber_lost() noexcept;
  // A message on topic's channel: false when it is not a publication with history.
  bool on_message(std::string_view topic, std::string_view bytes);

  std::size_t pending() const noexcept { return pending_.size(); }

 private:
  enum class Kind : std::uint8_t { append, read, gap };
  // Who asked for a read: the first offset it wants (none: the position only), and its answer.
  struct Reader {
    std::optional<std::uint64_t> since;
    pubsub::ReadDone done;
  };
  struct Command {
    Kind kind;
    std::string topic;
    std::vector<std::string> arguments;  // EVALSHA's, sha first
    pubsub::AppendDone append_done;
    std::vector<Reader> readers;  // a read's: one read answers them all
    bool latest_only = false;     // a read's
  };
  // Reads waiting for the SUBSCRIBE, one group per policy (what the read script is given).
  struct WaitingReads {
    pubsub::HistoryPolicy policy;
    std::vector<Reader> readers;
  };
  struct Held {
    std::string epoch;
    pubsub::HistoryEntry entry;
  };
  struct Cursor {
    std::string epoch;  // empty: nothing delivered yet, no position to keep
    std::uint64_t last = 0;
    bool filling = false;    // a gap read is out; live publications wait in held
    bool confirmed = false;  // the channel's SUBSCRIBE is in effect
    std::vector<Held> held;  // allocated only during a gap read
    // Reads of a subscribe, sent once the SUBSCRIBE is in effect: a publication after the position
    // they answer then comes live, never falling between the two.
    std::vector<WaitingReads> reads;
  };

  void push(Command command);
  Command read_command(std::string topic, const pubsub::HistoryPolicy& policy,
                       std::vector<Reader> readers);
  static void answer_readers(Command& read_command, pubsub::HistoryRead& read);
  void send(const Command& command);
  void start_gap_read(std::string_view topic, Cursor& cursor);
  void accept(std::string_view topic, Cursor& cursor, std::string_view epoch, std::uint64_t offset,
              ws::Opcode opcode, std::string_view payload);
  void on_gap_read(std::string_view topic, pubsub::HistoryRead& read);
  void on_reply(void* reply);
  static void on_reply(redisAsyncContext* context, void* reply, void* self);

  const std::string prefix_;
  const std::string header_text_, header_binary_;  // version 2 headers up to the offset
  const std::string instance_;                     // this instance's id in hex
  const pubsub::DeliverFunction& deliver_;
  redisAsyncContext* publisher_ = nullptr;
  std::uint64_t next_sequence_ = 1;
  std::deque<Command> pending_;  // sent (or to send) in this order; answered in this order
  std::unordered_map<std::string, Cursor> cursors_;
  Counter gap_reads_, gap_lost_;
};

}  // namespace pylon::cluster
