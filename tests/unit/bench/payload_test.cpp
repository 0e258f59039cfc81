#include "bench/payload.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include "pubsub/json_syntax.hpp"

namespace pylon::bench {
namespace {

std::string payload(PayloadKind kind, std::size_t bytes, std::uint64_t seed) {
  std::string out = "prefix";
  append_payload(out, kind, bytes, seed);
  EXPECT_EQ(out.substr(0, 6), "prefix") << "appends, keeps what was there";
  return out.substr(6);
}

TEST(Payload, HasExactlyTheSizeAsked) {
  for (const PayloadKind kind : {PayloadKind::filler, PayloadKind::json})
    for (const std::size_t bytes : {0u, 1u, 30u, 47u, 48u, 1024u, 65536u})
      EXPECT_EQ(payload(kind, bytes, 7).size(), bytes) << payload_kind_name(kind) << " " << bytes;
}

TEST(Payload, JsonRecordsAreArrayElements) {
  for (const std::size_t bytes : {0u, 10u, 100u, 1024u, 20000u}) {
    const std::string records = payload(PayloadKind::json, bytes, 3);
    EXPECT_TRUE(pubsub::is_valid_json("[" + records + "]")) << records;
  }
  EXPECT_NE(payload(PayloadKind::json, 1024, 1).find(R"({"symbol":"SYM)"), std::string::npos);
}

TEST(Payload, SeedsGiveDifferentRecords) {
  EXPECT_NE(payload(PayloadKind::json, 1024, 1), payload(PayloadKind::json, 1024, 2));
  EXPECT_EQ(payload(PayloadKind::json, 1024, 5), payload(PayloadKind::json, 1024, 5));
}

std::size_t deflated_size(const std::string& data) {
  uLongf size = compressBound(data.size());
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size,
            reinterpret_cast<const Bytef*>(data.data()), data.size(), 6);
  return size;
}

TEST(Payload, JsonCompressesLikeDataNotLikeFiller) {
  const std::string json = payload(PayloadKind::json, 1024, 9);
  const std::string filler = payload(PayloadKind::filler, 1024, 9);
  const double json_ratio = static_cast<double>(deflated_size(json)) / json.size();
  EXPECT_GT(json_ratio, 0.2) << "records compress too well to stand for real data";
  EXPECT_LT(json_ratio, 0.7) << "repeated keys must compress";
  EXPECT_LT(deflated_size(filler) * 20, filler.size());
}

TEST(Payload, KindNamesRoundTrip) {
  PayloadKind kind{};
  ASSERT_TRUE(parse_payload_kind("json", kind));
  EXPECT_EQ(kind, PayloadKind::json);
  ASSERT_TRUE(parse_payload_kind("filler", kind));
  EXPECT_EQ(kind, PayloadKind::filler);
  EXPECT_FALSE(parse_payload_kind("random", kind));
}

}  // namespace
}  // namespace pylon::bench
