// Topics on a server connection: subscriptions, and the delivery of published messages to a
// subscriber (encoded once per message and shared; RFC 7692 frames per compression mode). Part of
// Connection (connection.hpp).
#include <limits.h>
#include <sys/uio.h>

#include <algorithm>

#include "pubsub/topic_name.hpp"
#include "server/connection.hpp"
#include "server/worker.hpp"

namespace pylon::detail {

bool Connection::is_subscribed(std::string_view topic) const noexcept {
  if (!spill_) return false;
  const auto& subscriptions = spill_->subscriptions;
  return std::any_of(subscriptions.begin(), subscriptions.end(),
                     [topic](const auto* subscribed) { return subscribed->name == topic; });
}

std::vector<std::string> Connection::subscriptions() const {
  std::vector<std::string> names;
  if (spill_)
    for (const auto* subscribed : spill_->subscriptions) names.push_back(subscribed->name);
  return names;
}

bool Connection::subscribe(std::string_view topic) {
  if (!pubsub::is_valid_topic(topic) && !pubsub::is_hidden_topic(topic)) return false;
  if (is_subscribed(topic)) return true;
  spill().subscriptions.push_back(&worker().topics().add(topic, this));
  worker().server().topics->add_subscriber(topic, worker().index());
  worker().server().counters->subscriptions.add(1);
  return true;
}

bool Connection::unsubscribe(std::string_view topic) {
  if (!spill_) return false;
  auto& subscriptions = spill_->subscriptions;
  for (auto it = subscriptions.begin(); it != subscriptions.end(); ++it) {
    if ((*it)->name != topic) continue;
    // The registry first: removing the last local subscriber frees the topic and its name.
    worker().server().topics->remove_subscriber(topic, worker().index());
    spill_->floors.erase(*it);
    std::erase_if(spill_->recovering,
                  [topic = *it](const Recovering& item) { return item.topic == topic; });
    worker().topics().remove(**it, this);
    subscriptions.erase(it);
    worker().server().counters->subscriptions.add(-1);
    release_spill_if_empty();
    return true;
  }
  return false;
}

void Connection::unsubscribe_all() noexcept {
  if (!spill_ || spill_->subscriptions.empty()) return;
  auto& subscriptions = spill_->subscriptions;
  for (auto* topic : subscriptions) {
    worker().server().topics->remove_subscriber(topic->name, worker().index());
    worker().topics().remove(*topic, this);
  }
  worker().server().counters->subscriptions.add(-static_cast<std::int64_t>(subscriptions.size()));
  subscriptions.clear();
  subscriptions.shrink_to_fit();
  spill_->floors.clear();
  spill_->recovering.clear();
}

PublishResult Connection::publish(std::string_view topic, const OffsetEnvelope& message,
                                  MessageKind kind, std::uint64_t tag) {
  Server& server = worker().server();
  const ws::Opcode opcode = opcode_of(kind);
  if (server.engine == nullptr || !server.history_policy(topic))
    return server.publish(topic, opcode, message);
  // The history lives in Redis: the outcome comes back to this loop, to this connection if it is
  // still there.
  Worker* worker = &this->worker();
  const std::uint64_t id = worker->watch(*this);
  const PublishResult result = server.publish(
      topic, opcode, message, [worker, connection = this, id, tag](const PublishResult& settled) {
        worker->loop().post([worker, connection, id, tag, settled] {
          if (Connection* found = worker->watched(connection, id))
            found->settle_publish(tag, settled);
        });
      });
  if (result.pending) ++spill().publishes_pending;
  return result;
}

DeliveryTally::DeliveryTally(std::span<const pubsub::MessageRef> run) noexcept {
  for (const auto& message : run) {
    const std::size_t kind = message->opcode == ws::Opcode::text ? 0 : 1;
    ++messages_[kind];
    bytes_[kind] += message->payload_size;
  }
}

void DeliveryTally::add() noexcept {
  if (subscribers_ == 0) return;
  for (std::size_t kind = 0; kind < 2; ++kind) {
    if (messages_[kind] == 0) continue;
    metrics_->messages_sent[kind].add(messages_[kind] * subscribers_);
    metrics_->bytes_sent[kind].add(bytes_[kind] * subscribers_);
  }
  subscribers_ = 0;
}

void Connection::count_delivered(DeliveryTally& tally) noexcept {
  tally.count(*route_->metrics);
  count_out(tally.messages(), tally.bytes());
}

void Connection::deliver_frames(const Topic& topic, std::span<const pubsub::MessageRef> run,
                                DeliveryTally& tally, bool several_topics) {
  if (state_ != State::open || !session_.open()) return;
  // A subscriber that just read the topic's history skips what it has: one well-predicted branch
  // for everyone else.
  if (!spill_->floors.empty() || !spill_->recovering.empty()) [[unlikely]] {
    if (hold(topic, run)) return;
    const std::size_t skipped = spill_->floors.skip(&topic, run);
    if (skipped == run.size()) return;
    if (skipped > 0) {  // counted for itself: the run's tally is for those who get all of it
      run = run.subspan(skipped);
      DeliveryTally rest(run);
      return deliver_frames(topic, run, rest, several_topics);
    }
  }
  // One write per iteration: runs of several topics wait in the outbox for the end of it.
  const bool gather = several_topics && spill_->subscriptions.size() > 1;
  // Bytes sent outside a read (an earlier delivery) go out first, so that only what the kernel
  // really refused counts against max_backpressure.
  if (!gather && buffered_amount() > 0 && !outbox_.blocked()) {
    flush();
    if (state_ != State::open) return;
  }
  const RouteMetrics& metrics = *route_->metrics;
  count_delivered(tally);
  // A window of its own (dedicated mode, context takeover agreed): every message is compressed
  // for this subscriber alone. Otherwise the frames shared by every subscriber go out as they are.
  const bool own_window = dedicated() != nullptr && server_context_takeover_;
  const std::size_t delivered =
      own_window ? write_own_frames(run) : write_shared_frames(run, gather);
  if (state_ != State::open) return;  // the peer is gone
  if (outbox_.waiting() != spill_->reported_backlog) report_backlog();
  if (delivered == run.size()) return;
  if (route_->behavior.slow_consumer == SlowConsumerPolicy::close) {
    metrics.backpressure_closes.add();
    return begin_close(ws::close_code::kPolicyViolation, "slow consumer");
  }
  metrics.backpressure_drops.add(run.size() -
                                 delivered);  // drop policy: skipped for this subscriber
}

const std::string& Connection::shared_frame(const pubsub::Message& message) {
  const std::string& frame = frame_for(message);
  if (&frame != &message.frame) {
    const ServerMetrics& counters = *worker().server().counters;
    counters.compressed_bytes[1].add(frame.size() - ws::frame_header_size(frame.size(), false));
    counters.uncompressed_bytes[1].add(message.payload_size);
  }
  return frame;
}

std::size_t Connection::write_shared_frames(std::span<const pubsub::MessageRef> run, bool gather) {
  if (deflate_)
    for (const auto& message : run) shared_frame(*message);  // compressed once, counted once
  std::size_t index = 0;
  std::size_t written_into_first = 0;  // bytes of run[index] the kernel already has
  // Over TLS (without kTLS) OpenSSL encrypts into records of its own anyway: the frames go through
  // the outbox below, and out in one flush at the end of the iteration.
  const bool through_openssl = tls_ && !tls()->kernel_sends;
  if (buffered_amount() == 0 && !through_openssl && !gather) {
    // Zero copy: the kernel reads the shared frames directly, one sendmsg for up to IOV_MAX
    // (1,024) frames, so that a burst goes out in one write (16 KiB of stack for the vector);
    // under io_uring the loop copies them and sends them with every other subscriber's, in one
    // io_uring_enter.
    constexpr std::size_t kMaxIovecs = IOV_MAX;
    iovec iov[kMaxIovecs];
    while (index < run.size()) {
      const std::size_t first = index;
      const std::size_t count = std::min(kMaxIovecs, run.size() - index);
      for (std::size_t i = 0; i < count; ++i) {
        const std::string& frame = frame_for(*run[index + i]);
        iov[i] = {const_cast<char*>(frame.data()), frame.size()};
      }
      const ssize_t written =
          outbox_.send_frames({iov, count}, net::SocketTransport{fd_, &worker().loop()});
      if (written < 0 && errno != EAGAIN && errno != EINTR) {
        peer_gone();
        return run.size();
      }
      std::size_t taken = written > 0 ? static_cast<std::size_t>(written) : 0;
      const std::size_t end = index + count;
      while (index < end && taken >= iov[index - first].iov_len)
        taken -= iov[index++ - first].iov_len;
      if (index < end) {  // the kernel is full inside run[index]
        written_into_first = taken;
        break;
      }
    }
    if (index == run.size()) return index;
    // The frame the kernel stopped in must be completed whatever the limit: the stream would
    // be corrupt otherwise.
    outbox_.enqueue(std::string_view(frame_for(*run[index])).substr(written_into_first));
    ++index;
    update_interest();
  }
  // Behind a backlog: copy, in order, up to max_backpressure.
  const std::size_t limit = worker().server().config.max_backpressure;
  for (; index < run.size(); ++index) {
    const std::string& frame = frame_for(*run[index]);
    if (buffered_amount() + frame.size() > limit) break;
    if (through_openssl || gather)
      write_bytes(frame);  // flushed at the end of the iteration
    else
      outbox_.enqueue(frame);
  }
  return index;
}

}  // namespace pylon::detail
