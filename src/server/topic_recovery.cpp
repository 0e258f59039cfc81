// Topics with history on a server connection: subscribing at a known position and recovering
// what the client missed (docs/protocol.md "History and recovery"), from the memory engine's
// history under its lock, or from the cluster engine's (Redis) by an asynchronous read. Part of
// Connection (connection.hpp).
#include <algorithm>

#include "server/connection.hpp"
#include "server/worker.hpp"

namespace pylon::detail {

std::optional<HistorySubscription> Connection::subscribe_with_history(std::string_view topic,
                                                                      const StreamPosition* since,
                                                                      std::uint64_t tag) {
  if (!subscribe(topic)) return std::nullopt;
  Server& server = worker().server();
  HistorySubscription result;
  const auto policy = server.history_policy(topic);
  if (!policy) return result;
  result.history = true;
  result.asked = since != nullptr;
  auto& subscriptions = spill_->subscriptions;
  const Topic& subscribed =
      **std::find_if(subscriptions.begin(), subscriptions.end(),
                     [topic](const Topic* item) { return item->name == topic; });
  if (server.engine != nullptr) {
    read_from_engine(subscribed, since, tag, *policy);
    result.pending = true;
    return result;
  }
  // Live first, then the history (the registry has this loop before the stream is locked): a
  // publication after the position read below reaches this subscriber live, one at or before
  // it is in what was read, and one already in this loop's inbox is under the floor.
  std::vector<pubsub::MessageRef> missed;  // a recovery, not a delivery: allocating is fine
  {
    pubsub::History::Locked stream =
        server.history->lock(topic, *policy, pubsub::History::now_ms());
    result.position = {stream.top(), stream.epoch()};
    if (since != nullptr) result.recovered = stream.read_after(since->offset, since->epoch, missed);
  }
  start_at(subscribed, since, result, missed);
  return result;
}

void Connection::start_at(const Topic& topic, const StreamPosition* since,
                          HistorySubscription& result, std::span<const pubsub::MessageRef> missed) {
  spill_->floors.set(&topic, result.position.offset);
  if (since != nullptr) worker().server().counters->recoveries[result.recovered ? 0 : 1].add();
  send_history(missed);
  result.sent = missed.size();
}

void Connection::read_from_engine(const Topic& topic, const StreamPosition* since,
                                  std::uint64_t tag, const pubsub::HistoryPolicy& policy) {
  // Live deliveries wait from now on: the registry already has this loop, and the engine's
  // SUBSCRIBE was posted before this read, so what the read does not find arrives live.
  auto& recovering = spill_->recovering;
  std::vector<pubsub::MessageRef> held;  // subscribed again while a read is out: what waits stays
  const auto earlier =
      std::find_if(recovering.begin(), recovering.end(),
                   [&topic](const Recovering& item) { return item.topic == &topic; });
  if (earlier != recovering.end()) {
    held = std::move(earlier->held);
    recovering.erase(earlier);
  }
  recovering.push_back({&topic, tag,
                        since != nullptr ? std::optional<StreamPosition>(*since) : std::nullopt,
                        std::move(held)});
  Worker* worker = &this->worker();
  const std::uint64_t id = worker->watch(*this);
  worker->server().read_history(
      topic.name, policy, since,
      [worker, connection = this, id, name = topic.name](pubsub::HistoryRead& read) {
        // Engine loop: back to this connection's, where it may be gone by now.
        worker->loop().post([worker, connection, id, name, read = std::move(read)]() mutable {
          if (Connection* found = worker->watched(connection, id))
            found->finish_recovery(name, read);
        });
      });
}

bool Connection::hold(const Topic& topic, std::span<const pubsub::MessageRef> run) {
  for (Recovering& item : spill_->recovering) {
    if (item.topic != &topic) continue;
    item.held.insert(item.held.end(), run.begin(), run.end());
    return true;
  }
  return false;
}

void Connection::finish_recovery(std::string_view name, pubsub::HistoryRead& read) {
  if (!spill_ || state_ != State::open) return;
  auto& recovering = spill_->recovering;
  const auto found =
      std::find_if(recovering.begin(), recovering.end(),
                   [name](const Recovering& item) { return item.topic->name == name; });
  if (found == recovering.end()) return;  // unsubscribed meanwhile
  Recovering item = std::move(*found);
  recovering.erase(found);
  Server& server = worker().server();
  const auto policy = server.history_policy(name);
  HistorySubscription result{.history = true, .asked = item.since.has_value()};
  result.position = {read.top, read.epoch};
  std::vector<pubsub::MessageRef> missed;  // a recovery, not a delivery: allocating is fine
  if (item.since) {
    const std::uint64_t first_kept =
        read.entries.empty() ? read.top + 1 : read.entries.front().offset;
    const pubsub::Recovery plan =
        pubsub::plan_recovery(read.top, read.epoch, first_kept, item.since->offset,
                              item.since->epoch, policy && policy->latest_only);
    result.recovered = plan != pubsub::Recovery::impossible;
    for (const pubsub::HistoryEntry& entry : read.entries) {
      const bool wanted =
          plan == pubsub::Recovery::latest
              ? &entry == &read.entries.back()
              : plan == pubsub::Recovery::after_since && entry.offset > item.since->offset;
      if (!wanted) continue;
      const std::string_view parts[] = {entry.payload};
      missed.push_back(pubsub::make_message(name, entry.opcode, parts, entry.offset));
    }
  }
  start_at(*item.topic, item.since ? &*item.since : nullptr, result, missed);
  if (route_->behavior.subscribed) route_->behavior.subscribed(*this, item.tag, name, result);
  // What arrived live meanwhile, above the floor just set.
  if (!item.held.empty() && state_ == State::open) {
    DeliveryTally tally(item.held);
    deliver_frames(*item.topic, item.held, tally);
  }
}

void Connection::settle_publish(std::uint64_t tag, const PublishResult& result) {
  if (spill_ && spill_->publishes_pending > 0) {
    --spill_->publishes_pending;
    release_spill_if_empty();
  }
  if (state_ == State::open && route_->behavior.published)
    route_->behavior.published(*this, tag, result);
}

void Connection::send_history(std::span<const pubsub::MessageRef> missed) {
  if (missed.empty()) return;
  worker().server().counters->history_sent.add(missed.size());
  DeliveryTally tally(missed);
  count_delivered(tally);
  // Through the connection's output, as replies go: in order with what this read already
  // answered, and never dropped for backpressure (history_size bounds the burst).
  const bool own_window = dedicated() != nullptr && server_context_takeover_;
  for (const auto& message : missed) {
    if (!own_window) {
      write_bytes(shared_frame(*message));
      continue;
    }
    const auto payload = std::span(reinterpret_cast<const std::uint8_t*>(message->payload().data()),
                                   message->payload_size);
    if (message->payload_size >= route_->compression.threshold)
      send_compressed(message->opcode, payload);
    else
      send_frame(message->opcode, payload);
  }
}

}  // namespace pylon::detail
