// A subscriber that loses nothing across reconnects: prints every publication of a topic with its
// offset; after a drop it reconnects (with backoff) and the TopicClient recovers what it missed.
//   topic_subscriber [URL] [TOPIC]    (default ws://127.0.0.1:8080/ws, chat:lobby)
// Against `pylon serve --namespace chat:history_size=100 --namespace chat:history_ttl=300`, with
// publications from e.g. `curl` on /api/publish; restart nothing, stop it with Ctrl-C.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "pylon/topic_client.hpp"

int main(int argc, char** argv) {
  const std::string url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/ws";
  const std::string topic = argc > 2 ? argv[2] : "chat:lobby";
  pylon::ClientLoop loop;
  std::shared_ptr<const pylon::ClientProfile> profile;
  try {  // at start-up, not on the loop: it may read the trust store for wss://
    profile = pylon::TopicClient::make_profile(
        url, {.ping_interval = 20, .reconnect = {.enabled = true}});
  } catch (const std::invalid_argument& error) {  // e.g. "url: missing host"
    std::fprintf(stderr, "%s\n", error.what());
    return 2;
  }
  pylon::TopicClient client(
      loop, profile,
      {.on_message =
           [](pylon::TopicClient&, const pylon::Publication& publication) {
             std::printf("%llu %.*s\n", static_cast<unsigned long long>(publication.offset),
                         static_cast<int>(publication.data.size()), publication.data.data());
           },
       .on_subscribed =
           [](pylon::TopicClient&, const pylon::SubscribeResult& result) {
             // Not recovered: what was missed is gone from the history; reload from the source.
             if (result.recovery && !result.recovered)
               std::printf("-- missed publications up to %llu are lost: reload\n",
                           static_cast<unsigned long long>(result.offset));
           },
       .on_error =
           [](pylon::TopicClient&, std::uint64_t, std::string_view code, std::string_view text) {
             std::fprintf(stderr, "error %.*s: %.*s\n", static_cast<int>(code.size()), code.data(),
                          static_cast<int>(text.size()), text.data());
           },
       .on_connection_error =
           [](pylon::TopicClient&, std::string_view error) {
             std::fprintf(stderr, "%.*s (reconnecting)\n", static_cast<int>(error.size()),
                          error.data());
           }});
  if (!client.subscribe(topic)) {
    std::fprintf(stderr, "not a topic name: %s\n", topic.c_str());
    return 2;
  }
  client.connect();
  loop.run();
}
