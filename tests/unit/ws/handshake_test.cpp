// Tests for src/ws/handshake.*.
#include "ws/handshake.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace pylon::ws {
namespace {

TEST(HandshakeTest, RfcExampleAcceptKey) {
  // RFC 6455 §1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  char out[kAcceptKeySize];
  compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
  EXPECT_EQ(std::string_view(out, kAcceptKeySize), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(HandshakeTest, AcceptKeyOfAnyInputIsTheDigest) {
  // Not valid keys, but the digest must be right over several SHA-1 blocks and over none of the
  // key (expected values from Python's hashlib).
  EXPECT_EQ(accept_key(std::string(500, 'A')), "PlmjnCzbINldGloZACAqqDU/5mA=");
  EXPECT_EQ(accept_key(""), "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
}

TEST(HandshakeTest, ValidClientKeys) {
  EXPECT_TRUE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(is_valid_client_key("+/+/+/+/+/+/+/+/+/+/+w=="));
}

TEST(HandshakeTest, InvalidClientKeys) {
  EXPECT_FALSE(is_valid_client_key(""));
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));    // 23 chars
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==="));  // 25 chars
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQAA"));   // no padding: 18 bytes
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZ=A="));   // padding in the middle
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25j*Q=="));   // not base64
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25j ZQ=="));  // space inside
  EXPECT_FALSE(is_valid_client_key(" dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZQ=="));  // 10 bytes
}

TEST(HandshakeTest, GeneratedClientKeysAreValidAndFresh) {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    const std::string key = generate_client_key();
    EXPECT_TRUE(is_valid_client_key(key)) << key;
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), 100u);
}

TEST(HandshakeTest, SelectSubprotocolInClientOrder) {
  const std::vector<std::string> supported = {"json", "chat.v2", "chat.v1"};
  EXPECT_EQ(select_subprotocol("chat.v1, chat.v2", supported), "chat.v1");
  EXPECT_EQ(select_subprotocol("xml,  json ", supported), "json");
  EXPECT_EQ(select_subprotocol("chat.v3", supported), "");
  EXPECT_EQ(select_subprotocol("", supported), "");
  EXPECT_EQ(select_subprotocol("JSON", supported), "");  // case-sensitive
  EXPECT_EQ(select_subprotocol("json", std::span<const std::string>()), "");
  const std::string offered = "a, chat.v2";
  const auto chosen = select_subprotocol(offered, supported);
  EXPECT_EQ(chosen.data(), offered.data() + 3);  // a view into the offer
}

}  // namespace
}  // namespace pylon::ws
