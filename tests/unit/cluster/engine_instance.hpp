// Test support for the Redis engine's tests: one "instance" is an engine on its own loop thread,
// recording what it delivers (as the server's deliver would) and what its control channel brings.
#pragma once

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cluster/redis_engine.hpp"
#include "net/event_loop.hpp"
#include "redis_server.hpp"

namespace pylon::cluster::testing {

struct Received {
  std::string topic;
  ws::Opcode opcode;
  std::string payload;
  std::uint64_t offset = 0;
  bool operator==(const Received&) const = default;
};

// One "instance": an engine on its own loop thread, recording what it delivers. The topic set
// plays the server's table behind active_topics().
class Instance {
 public:
  explicit Instance(const std::string& url,
                    std::string prefix = "test:", RedisEngineLimits limits = {}) {
    engine_ = make_redis_engine(
        loop_, {.url = url, .prefix = std::move(prefix)},
        [this](std::string_view topic, ws::Opcode opcode, std::string_view payload,
               std::uint64_t offset) {
          std::lock_guard lock(mutex_);
          received_.push_back({std::string(topic), opcode, std::string(payload), offset});
        },
        [this] { return std::vector<std::string>(topics_.begin(), topics_.end()); },
        [this](std::string_view message) {
          std::lock_guard lock(mutex_);
          received_.push_back({"#control", ws::Opcode::text, std::string(message)});
        },
        metrics_, limits);
    thread_ = std::thread([this] { loop_.run(); });
  }
  ~Instance() {
    loop_.stop();
    thread_.join();
    engine_.reset();  // after the loop stopped, as the engine's header allows
  }

  bool available() const { return engine_->available(); }

  // Runs fn on the loop thread and waits for it.
  void on_loop(std::function<void()> fn) {
    std::promise<void> done;
    loop_.post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  void subscribe(const std::string& topic) {
    on_loop([&] {
      topics_.insert(topic);
      engine_->subscribe(topic);
    });
  }
  void unsubscribe(const std::string& topic) {
    on_loop([&] {
      topics_.erase(topic);
      engine_->unsubscribe(topic);
    });
  }
  void publish(const std::string& topic, std::string payload,
               ws::Opcode opcode = ws::Opcode::text) {
    on_loop([&] { engine_->publish(topic, opcode, payload); });
  }
  void send_control(const std::string& message) {
    on_loop([&] { engine_->send_control(message); });
  }
  // An append whose answer (offset, epoch) comes when Redis stores it, maybe much later.
  std::shared_future<std::pair<std::uint64_t, std::string>> append(
      const std::string& topic, const std::string& head, const std::string& label,
      const std::string& tail, const pubsub::HistoryPolicy& policy) {
    auto promise = std::make_shared<std::promise<std::pair<std::uint64_t, std::string>>>();
    std::shared_future<std::pair<std::uint64_t, std::string>> answer = promise->get_future();
    on_loop([&] {
      engine_->append({.topic = topic,
                       .opcode = ws::Opcode::text,
                       .head = head,
                       .label = label,
                       .tail = tail,
                       .policy = policy},
                      [promise](std::uint64_t offset, std::string_view epoch) {
                        promise->set_value({offset, std::string(epoch)});
                      });
    });
    return answer;
  }
  pubsub::HistoryRead read(const std::string& topic, const pubsub::HistoryPolicy& policy,
                           std::optional<std::uint64_t> since) {
    return read_together(topic, {{policy, since}}, false).front();
  }
  // Reads of topic asked in one loop turn (after subscribing to it when subscribe_first, so that
  // they wait for the SUBSCRIBE together), answers in the order asked.
  using ReadAsk = std::pair<pubsub::HistoryPolicy, std::optional<std::uint64_t>>;
  std::vector<pubsub::HistoryRead> read_together(const std::string& topic,
                                                 const std::vector<ReadAsk>& asks,
                                                 bool subscribe_first) {
    std::vector<std::shared_ptr<std::promise<pubsub::HistoryRead>>> promises;
    for (std::size_t i = 0; i < asks.size(); ++i)
      promises.push_back(std::make_shared<std::promise<pubsub::HistoryRead>>());
    on_loop([&] {
      if (subscribe_first) {
        topics_.insert(topic);
        engine_->subscribe(topic);
      }
      for (std::size_t i = 0; i < asks.size(); ++i)
        engine_->read(topic, asks[i].first, asks[i].second,
                      [promise = promises[i]](pubsub::HistoryRead& read) {
                        promise->set_value(std::move(read));
                      });
    });
    std::vector<pubsub::HistoryRead> answers;
    for (auto& promise : promises) {
      auto answer = promise->get_future();
      if (answer.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
        throw std::runtime_error("no answer to a history read");
      answers.push_back(answer.get());
    }
    return answers;
  }

  void presence_join(const std::string& topic, const PresenceMember& member, std::uint64_t ttl_ms) {
    on_loop([&] { engine_->presence_join(topic, member, ttl_ms); });
  }
  void presence_leave(const std::string& topic, const std::string& client) {
    on_loop([&] { engine_->presence_leave(topic, client); });
  }
  // The members sorted by client id; nullopt when the engine could not read them.
  std::optional<PresenceMembers> read_presence(const std::string& topic) {
    auto promise = std::make_shared<std::promise<std::optional<PresenceMembers>>>();
    auto answer = promise->get_future();
    on_loop([&] {
      engine_->read_presence(topic, [promise](const PresenceMembers* members) {
        if (members == nullptr) return promise->set_value(std::nullopt);
        PresenceMembers sorted = *members;
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto& a, const auto& b) { return a.client < b.client; });
        promise->set_value(std::move(sorted));
      });
    });
    if (answer.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
      throw std::runtime_error("no answer to a presence read");
    return answer.get();
  }

  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::size_t received_count() {
    std::lock_guard lock(mutex_);
    return received_.size();
  }

  double metric(std::string_view name, std::string_view label_value = {}) const {
    for (const auto& family : metrics_.snapshot()) {
      if (family.name != name) continue;
      for (const auto& sample : family.samples)
        if (label_value.empty() ||
            (!sample.labels.empty() && sample.labels[0].second == label_value))
          return sample.value;
    }
    return -1;
  }

 private:
  MetricsRegistry metrics_;
  net::EventLoop loop_;
  std::set<std::string> topics_;  // loop thread
  std::unique_ptr<pubsub::ClusterEngine> engine_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Received> received_;
};

}  // namespace pylon::cluster::testing
