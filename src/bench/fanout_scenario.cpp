// fanout: --subscribers connections subscribe to --topic on /ws (docs/protocol.md) and wait for
// their acks; --publishers connections publish at --rate messages per second in total:
//
//   {"type":"publish","topic":T,"data":{"t":<intended send time, ns>,"seq":n[,"pad":"xx.."]}}
//
// Every subscriber takes its delivery latency from `t` (one process, one clock). The shared
// FanoutLedger tells which delivery was the last one of a message: that latency is the message's
// `last_delivery`. `pad` brings the publish request up to --size bytes.
//
// On a topic with history every subscriber also checks the offsets (docs/bench.md "Loss and
// duplicates"): from the position in its ack on, each offset must come once and in order.
#include <charconv>

#include "bench/scenarios.hpp"
#include "client/topic_wire.hpp"

namespace pylon::bench {
namespace {

constexpr std::string_view kSubscribeId = "1";

// Reads the unsigned integer right after `key` in `text`; false when absent.
bool number_after(std::string_view text, std::string_view key, std::size_t from,
                  std::uint64_t& value, std::size_t& end) {
  const std::size_t at = text.find(key, from);
  if (at == std::string_view::npos) return false;
  const char* begin = text.data() + at + key.size();
  const auto [ptr, error] = std::from_chars(begin, text.data() + text.size(), value);
  if (error != std::errc() || ptr == begin) return false;
  end = static_cast<std::size_t>(ptr - text.data());
  return true;
}

class FanoutWorker final : public Worker {
 public:
  FanoutWorker(SharedPlan& plan, unsigned index, unsigned count)
      : Worker(plan, index, count), timer_(loop_, [this] { publish_due(); }) {
    for (Slot& slot : slots_)
      if (slot.role == Role::publisher) publishers_.push_back(&slot);
    // Built once; each publish rewrites it in place (no allocation per message).
    message_.reserve(options_.size + options_.topic.size() + 128);
  }

 private:
  void on_open(Slot& slot) override {
    if (slot.role != Role::subscriber) return;
    std::string request = R"({"type":"subscribe","topics":[")" + options_.topic + R"("],"id":)";
    request += kSubscribeId;
    request += '}';
    slot.client->send(request);
  }

  void on_begin() override {
    if (publishers_.empty()) return;
    start_pacer(pacer_, publishers_.size(), options_.publishers);
    publish_due();
  }

  void on_message(Slot& slot, std::string_view message, MessageKind kind,
                  std::uint64_t now_ns) override {
    std::uint64_t sent_ns = 0, sequence = 0;
    std::size_t end = 0;
    client::TopicMessage delivery;
    if (slot.role == Role::subscriber && client::parse_topic_message(message, delivery) &&
        number_after(delivery.data, R"({"t":)", 0, sent_ns, end) &&
        number_after(delivery.data, R"("seq":)", end, sequence, end)) {
      if (delivery.offset != 0 && slot.has_offset && !in_order(slot, delivery.offset)) return;
      return delivered(sent_ns, sequence, message.size(), now_ns);
    }
    if (message.starts_with(R"({"type":"ack")")) {
      if (slot.role == Role::subscriber && !slot.acked) {
        slot.acked = true;
        counters.subscribed.add();
        take_position(slot, message);
        resolve(slot);
      }
      return;
    }
    if (message.starts_with(R"({"type":"error")")) {
      constexpr std::string_view kCode = R"("code":")";
      const std::size_t at = message.find(kCode);
      std::string_view code = "unknown";
      if (at != std::string_view::npos) {
        code = message.substr(at + kCode.size());
        code = code.substr(0, code.find('"'));
      }
      return count_server_error(code);
    }
    ++errors.mismatched;  // nothing we asked for
    counters.errors.add();
  }

  // The subscribe ack of a topic with history says where the subscriber starts.
  void take_position(Slot& slot, std::string_view ack) {
    if (!replies_.read(ack, reply_)) return;
    for (const client::ReplyPosition& position : reply_.positions) {
      if (position.topic != options_.topic) continue;
      slot.has_offset = true;
      slot.offset = position.offset;
      counters.with_offsets.add();
    }
  }

  // False for a duplicate (not counted as a delivery); a gap counts what it skipped as lost.
  bool in_order(Slot& slot, std::uint64_t offset) {
    switch (client::judge_offset(slot.offset, offset)) {
      case client::OffsetVerdict::duplicate:
        counters.duplicated.add();
        return false;
      case client::OffsetVerdict::gap:
        counters.offset_lost.add(offset - slot.offset - 1);
        break;
      case client::OffsetVerdict::next:
        break;
    }
    slot.offset = offset;
    std::uint64_t top = plan_.top_offset.load(std::memory_order_relaxed);
    while (top < offset &&
           !plan_.top_offset.compare_exchange_weak(top, offset, std::memory_order_relaxed)) {
    }
    return true;
  }

  // What a subscriber never received after its last offset (it ended early, or the end of the
  // stream was lost): up to the highest offset any subscriber received. A publication no
  // subscriber received at all is beyond what the subscribers can tell.
  void on_finish() override {
    const std::uint64_t top = plan_.top_offset.load(std::memory_order_relaxed);
    for (const Slot& slot : slots_)
      if (slot.has_offset && slot.offset < top) counters.offset_lost.add(top - slot.offset);
  }

  void delivered(std::uint64_t sent_ns, std::uint64_t sequence, std::size_t bytes,
                 std::uint64_t now_ns) {
    const std::uint64_t latency = now_ns > sent_ns ? now_ns - sent_ns : 0;
    const bool measured = is_measured(sent_ns);
    record_latency(latency, measured);
    if (measured) {
      counters.received.add();
      counters.bytes_received.add(bytes);
    }
    if (const auto last = plan_.ledger->deliver(sequence, latency); last && measured) {
      last_delivery.record(*last);
      counters.completed.add();
    }
  }

  void publish_due() {
    const std::uint64_t now = ClientTimer::monotonic_ns();
    while (!pacer_.finished() && pacer_.due_ns() <= now) {
      const std::uint64_t intended = pacer_.due_ns();
      Slot& slot = *publishers_[pacer_.take() % publishers_.size()];
      if (slot.state == SlotState::open) publish(slot, intended);
    }
    if (!pacer_.finished()) timer_.arm_at(pacer_.due_ns());
  }

  void publish(Slot& slot, std::uint64_t intended_ns) {
    const std::uint64_t sequence = plan_.next_sequence.fetch_add(1, std::memory_order_relaxed);
    plan_.ledger->begin(sequence, plan_.expected_subscribers.load(std::memory_order_relaxed));
    message_.clear();
    message_ += R"({"type":"publish","topic":")";
    message_ += options_.topic;
    message_ += R"(","data":{"t":)";
    append_number(intended_ns);
    message_ += R"(,"seq":)";
    append_number(sequence);
    // Filler: "pad":"xxx…"; json: "items":[records…] (bench/payload.hpp).
    const bool json = options_.payload == PayloadKind::json;
    const std::string_view open = json ? R"(,"items":[)" : R"(,"pad":")";
    constexpr std::size_t kClose = sizeof(R"(]}})") - 1;
    if (message_.size() + open.size() + kClose < options_.size) {
      message_ += open;
      append_payload(message_, options_.payload, options_.size - message_.size() - kClose,
                     sequence);
      message_ += json ? ']' : '"';
    }
    message_ += "}}";
    if (slot.client->send(message_) == SendStatus::dropped) {
      ++errors.dropped_sends;
      counters.errors.add();
      return;
    }
    counters.sent_all.add();
    if (is_measured(intended_ns)) {
      counters.sent.add();
      counters.published.add();
      counters.bytes_sent.add(message_.size());
    }
  }

  void append_number(std::uint64_t value) {
    char digits[24];
    const auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
    message_.append(digits, end);
  }

  std::vector<Slot*> publishers_;
  client::ReplyReader replies_;  // subscribe acks
  client::Reply reply_;
  std::string message_;
  Pacer pacer_;
  ClientTimer timer_;
};

}  // namespace

std::unique_ptr<Worker> make_fanout_worker(SharedPlan& plan, unsigned index, unsigned count) {
  return std::make_unique<FanoutWorker>(plan, index, count);
}

}  // namespace pylon::bench
