// pylon_topic_bench: publish throughput and recovery time on topics with history, measured with
// pylon's own pub/sub client (include/pylon/topic_client.hpp). bench/history_suite.py runs it
// side by side on the memory and Redis engines (docs/benchmarks.md).
//
//   pylon_topic_bench publish --url URL [--url URL ...] [--topic T] [--publishers P]
//                             [--window W] [--warmup S] [--duration S]
//   pylon_topic_bench recover --url URL [--url URL ...] [--clients N] [--topics K]
//                             [--missed M] [--prefix P]
//
// publish: P connections (connection k on URL k mod U) publish {"n":i} with an id on T, keeping
// W publishes unacked each (closed loop): acked publishes per second over the measured window.
//
// recover: N subscribers (subscriber k on URL k mod U, topic P<k mod K>) subscribe and receive one
// publication per topic; they close; M publications per topic are published (and acked); then all
// N connect again at once and recover. Per subscriber, the time from the reconnect until its
// recovery ack (every missed publication delivered before it); the time until the last one.
//
// One client thread (one ClientLoop): the figures include the client's own work. Prints one JSON
// object on stdout; exit 1 (with "error") when the run did not complete within its deadline.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pylon/client.hpp"
#include "pylon/topic_client.hpp"

namespace {

using pylon::ClientLoop;
using pylon::ClientTimer;
using pylon::TopicClient;

struct Options {
  std::string mode;
  std::vector<std::string> urls;
  std::string topic = "chat:bench";
  std::size_t publishers = 4;
  std::size_t window = 64;
  double warmup = 1;
  double duration = 5;
  std::size_t clients = 1000;
  std::size_t topics = 10;
  std::size_t missed = 100;
  std::string prefix = "chat:recover";
  double deadline = 120;  // seconds for the whole run
};

[[noreturn]] void usage(const char* reason) {
  std::fprintf(stderr, "pylon_topic_bench: %s\n(see bench/topic_bench.cpp for the options)\n",
               reason);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) usage("a mode is required: publish or recover");
  o.mode = argv[1];
  if (o.mode != "publish" && o.mode != "recover") usage("the mode is publish or recover");
  for (int i = 2; i < argc; i += 2) {
    const std::string_view option = argv[i];
    if (i + 1 >= argc) usage("an option lacks its value");
    const std::string value = argv[i + 1];
    const auto count = [&] {
      const long long n = std::atoll(value.c_str());
      if (n <= 0) usage("counts must be positive");
      return static_cast<std::size_t>(n);
    };
    if (option == "--url")
      o.urls.push_back(value);
    else if (option == "--topic")
      o.topic = value;
    else if (option == "--publishers")
      o.publishers = count();
    else if (option == "--window")
      o.window = count();
    else if (option == "--warmup")
      o.warmup = std::atof(value.c_str());
    else if (option == "--duration")
      o.duration = std::atof(value.c_str());
    else if (option == "--clients")
      o.clients = count();
    else if (option == "--topics")
      o.topics = count();
    else if (option == "--missed")
      o.missed = count();
    else if (option == "--prefix")
      o.prefix = value;
    else if (option == "--deadline")
      o.deadline = std::atof(value.c_str());
    else
      usage(("unknown option " + std::string(option)).c_str());
  }
  if (o.urls.empty()) usage("--url is required");
  return o;
}

double seconds_since(std::uint64_t start_ns) {
  return static_cast<double>(ClientTimer::monotonic_ns() - start_ns) / 1e9;
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(fraction * values.size()))];
}

// Shared by both modes: the loop, the profiles per URL, a deadline and the failure that ends it.
struct Run {
  explicit Run(const Options& options)
      : o(options), deadline(loop, [this] { fail("deadline passed"); }) {
    // Connections that fail on the way (a full accept queue) try again quickly.
    pylon::ClientOptions client_options{
        .reconnect = {.enabled = true, .initial_delay = 0.05, .max_delay = 1}};
    for (const std::string& url : o.urls)
      profiles.push_back(TopicClient::make_profile(url, client_options));
    deadline.arm_at(ClientTimer::monotonic_ns() + static_cast<std::uint64_t>(o.deadline * 1e9));
  }
  void fail(std::string_view why) {
    if (error.empty()) error = why;
    loop.stop();
  }
  void count_error(std::string_view code) {
    ++errors;
    if (first_error.empty()) first_error = code;
  }

  const Options& o;
  ClientLoop loop;
  ClientTimer deadline;
  std::vector<std::shared_ptr<const pylon::ClientProfile>> profiles;
  std::string error;
  std::string first_error;
  std::uint64_t errors = 0;
};

// ---------------------------------------------------------------------------------------------
// publish

int publish_mode(const Options& o) {
  Run run(o);
  std::vector<std::unique_ptr<TopicClient>> publishers;
  std::uint64_t start_ns = 0, measure_ns = 0, end_ns = 0;
  std::uint64_t acked = 0, measured = 0;
  ClientTimer phase(run.loop, [&] {
    if (measure_ns == 0) {
      measure_ns = ClientTimer::monotonic_ns();
      phase.arm_at(measure_ns + static_cast<std::uint64_t>(o.duration * 1e9));
    } else {
      end_ns = ClientTimer::monotonic_ns();
      run.loop.stop();
    }
  });
  const auto publish_one = [&](TopicClient& client) {
    if (client.publish(o.topic, "{\"n\":1}") == 0) run.count_error("not_sent");
  };
  std::size_t open = 0;
  for (std::size_t k = 0; k < o.publishers; ++k) {
    publishers.push_back(std::make_unique<TopicClient>(
        run.loop, run.profiles[k % run.profiles.size()],
        pylon::TopicHandlers{
            .on_open =
                [&](TopicClient&) {
                  if (++open < o.publishers) return;
                  start_ns = ClientTimer::monotonic_ns();
                  phase.arm_at(start_ns + static_cast<std::uint64_t>(o.warmup * 1e9));
                  for (auto& publisher : publishers)
                    for (std::size_t w = 0; w < o.window; ++w) publish_one(*publisher);
                },
            .on_published =
                [&](TopicClient& client, std::uint64_t, std::uint64_t) {
                  ++acked;
                  if (measure_ns != 0) ++measured;
                  publish_one(client);
                },
            .on_error =
                [&](TopicClient& client, std::uint64_t, std::string_view code, std::string_view) {
                  run.count_error(code);
                  publish_one(client);
                },
            .on_connection_error = [&](TopicClient&, std::string_view e) { run.count_error(e); },
        }));
    publishers.back()->connect();
  }
  run.loop.run();
  const double seconds = end_ns > measure_ns ? static_cast<double>(end_ns - measure_ns) / 1e9 : 0;
  std::printf(
      "{\"mode\":\"publish\",\"publishers\":%zu,\"window\":%zu,\"seconds\":%.3f,\"acked_total\":"
      "%llu,\"acked\":%llu,\"publishes_per_second\":%.1f,\"errors\":%llu,\"first_error\":\"%s\","
      "\"error\":\"%s\"}\n",
      o.publishers, o.window, seconds, static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(measured), seconds > 0 ? measured / seconds : 0.0,
      static_cast<unsigned long long>(run.errors), run.first_error.c_str(), run.error.c_str());
  return run.error.empty() ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// recover

class Recovery {
 public:
  explicit Recovery(const Options& options) : o_(options), run_(options) {
    publisher_ = std::make_unique<TopicClient>(
        run_.loop, run_.profiles.front(),
        pylon::TopicHandlers{
            .on_open =
                [this](TopicClient&) {
                  if (phase_ == Phase::start) connect_all();
                },
            .on_published = [this](TopicClient&, std::uint64_t, std::uint64_t) { published(); },
            .on_error = [this](TopicClient&, std::uint64_t, std::string_view code,
                               std::string_view) { run_.fail(code); },
        });
    for (std::size_t k = 0; k < o_.clients; ++k) {
      subscribers_.push_back(std::make_unique<TopicClient>(
          run_.loop, run_.profiles[k % run_.profiles.size()],
          pylon::TopicHandlers{
              .on_message = [this](TopicClient&, const pylon::Publication&) { delivered(); },
              .on_subscribed = [this, k](TopicClient&,
                                         const pylon::SubscribeResult& r) { subscribed(k, r); },
              .on_error = [this](TopicClient&, std::uint64_t, std::string_view code,
                                 std::string_view) { run_.fail(code); },
              .on_close = [this](TopicClient&, std::uint16_t, std::string_view) { closed(); },
              .on_connection_error = [this](TopicClient&,
                                            std::string_view e) { run_.count_error(e); },
          }));
      subscribers_.back()->subscribe(topic(k));
    }
    recovery_seconds_.resize(o_.clients, -1);
  }

  int run() {
    publisher_->connect();
    run_.loop.run();
    std::vector<double> times;
    for (const double t : recovery_seconds_)
      if (t >= 0) times.push_back(t * 1e3);
    std::uint64_t duplicates = 0, gaps = 0;
    for (const auto& subscriber : subscribers_) {
      duplicates += subscriber->stats().duplicates;
      gaps += subscriber->stats().gaps;
    }
    std::printf(
        "{\"mode\":\"recover\",\"clients\":%zu,\"topics\":%zu,\"missed\":%zu,\"urls\":%zu,"
        "\"recovered\":%zu,\"not_recovered\":%zu,\"delivered\":%llu,\"expected\":%zu,"
        "\"duplicates\":%llu,\"gaps\":%llu,\"all_recovered_ms\":%.2f,\"p50_ms\":%.2f,\"p99_ms\":"
        "%.2f,\"max_ms\":%.2f,\"deliveries_per_second\":%.1f,\"connection_errors\":%llu,"
        "\"first_connection_error\":\"%s\",\"error\":\"%s\"}\n",
        o_.clients, o_.topics, o_.missed, o_.urls.size(), recovered_, not_recovered_,
        static_cast<unsigned long long>(recovery_deliveries_), o_.clients * o_.missed,
        static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(gaps),
        all_seconds_ * 1e3, percentile(times, 0.5), percentile(times, 0.99), percentile(times, 1.0),
        all_seconds_ > 0 ? static_cast<double>(recovery_deliveries_) / all_seconds_ : 0.0,
        static_cast<unsigned long long>(run_.errors), run_.first_error.c_str(), run_.error.c_str());
    return run_.error.empty() ? 0 : 1;
  }

 private:
  enum class Phase { start, subscribing, warming, closing, publishing, recovering, done };

  std::string topic(std::size_t k) const { return o_.prefix + std::to_string(k % o_.topics); }

  void connect_all() {
    phase_ = Phase::subscribing;
    for (auto& subscriber : subscribers_) subscriber->connect();
  }

  void subscribed(std::size_t k, const pylon::SubscribeResult& result) {
    if (phase_ == Phase::subscribing && !result.recovery) {
      if (++count_ < o_.clients) return;
      // One publication per topic, so that every subscriber has an offset to recover from.
      phase_ = Phase::warming;
      count_ = 0;
      publish_round(1);
      return;
    }
    if (phase_ != Phase::recovering || !result.recovery) return run_.fail("unexpected ack");
    recovery_seconds_[k] = seconds_since(reconnect_ns_);
    ++(result.recovered ? recovered_ : not_recovered_);
    if (recovered_ + not_recovered_ < o_.clients) return;
    all_seconds_ = seconds_since(reconnect_ns_);
    phase_ = Phase::done;
    run_.loop.stop();
  }

  void delivered() {
    if (phase_ == Phase::recovering) {
      ++recovery_deliveries_;
      return;
    }
    if (phase_ != Phase::warming || ++count_ < o_.clients) return;
    phase_ = Phase::closing;
    count_ = 0;
    for (auto& subscriber : subscribers_) subscriber->close();
  }

  void closed() {
    if (phase_ != Phase::closing || ++count_ < o_.clients) return;
    phase_ = Phase::publishing;
    count_ = 0;
    publish_round(o_.missed);
  }

  void publish_round(std::size_t per_topic) {
    acks_wanted_ = per_topic * o_.topics;
    for (std::size_t n = 0; n < per_topic; ++n)
      for (std::size_t t = 0; t < o_.topics; ++t)
        if (publisher_->publish(topic(t), "{\"n\":" + std::to_string(n) + "}") == 0)
          return run_.fail("a publish was not sent");
  }

  void published() {
    if (--acks_wanted_ > 0 || phase_ != Phase::publishing) return;
    phase_ = Phase::recovering;
    reconnect_ns_ = ClientTimer::monotonic_ns();
    for (auto& subscriber : subscribers_) subscriber->connect();
  }

  const Options& o_;
  Run run_;
  std::unique_ptr<TopicClient> publisher_;
  std::vector<std::unique_ptr<TopicClient>> subscribers_;
  Phase phase_ = Phase::start;
  std::size_t count_ = 0;
  std::size_t acks_wanted_ = 0;
  std::uint64_t reconnect_ns_ = 0;
  std::vector<double> recovery_seconds_;  // per subscriber; -1: not recovered
  std::size_t recovered_ = 0, not_recovered_ = 0;
  std::uint64_t recovery_deliveries_ = 0;
  double all_seconds_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  if (options.mode == "publish") return publish_mode(options);
  return Recovery(options).run();
}
