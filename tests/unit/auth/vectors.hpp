// The JWT test vectors minted by PyJWT (make_vectors.py -> vectors.json), loaded once, and the
// helpers the auth tests share.
#pragma once

#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "auth/key_set.hpp"

namespace pylon::auth::test {

struct Vectors {
  double now = 0;
  std::string info;  // the raw text of pylon.info in the "base" payload
  std::map<std::string, std::string, std::less<>> secrets, pems;  // by key name
  std::string jwks, jwks_two;                                     // JSON texts
  struct Token {
    std::string token, key;  // key: a name of secrets/pems, "jwks" or "jwks_two"
  };
  std::map<std::string, Token, std::less<>> tokens;

  static const Vectors& get() {
    static const Vectors instance = load(PYLON_AUTH_TEST_DIR "/vectors.json");
    return instance;
  }

  const Token& token(std::string_view name) const {
    const auto it = tokens.find(name);
    if (it == tokens.end()) throw std::runtime_error("no token " + std::string(name));
    return it->second;
  }

  KeySet keys(std::string_view name) const {
    if (name == "jwks") return KeySet::from_jwks(jwks);
    if (name == "jwks_two") return KeySet::from_jwks(jwks_two);
    if (const auto it = secrets.find(name); it != secrets.end())
      return KeySet::from_hmac_secret(it->second);
    return KeySet::from_pem(pems.at(std::string(name)));
  }

  static Vectors load(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    simdjson::dom::parser parser;
    const simdjson::padded_string padded(text.str());
    const simdjson::dom::element root = parser.parse(padded).value();
    Vectors v;
    v.now = root["now"].get_double().value();
    v.info = std::string(root["info"].get_string().value());
    const simdjson::dom::object keys = root["keys"].get_object().value();
    for (const auto [name, key] : keys) {
      std::string_view value;
      if (key["secret"].get_string().get(value) == simdjson::SUCCESS) {
        std::string bytes(base64url_decoded_size(value.size()), '\0');
        if (!base64url_decode(value, reinterpret_cast<std::uint8_t*>(bytes.data())))
          throw std::runtime_error("bad secret in vectors.json");
        v.secrets.emplace(name, bytes);
      } else {
        v.pems.emplace(name, std::string(key["pem"].get_string().value()));
      }
    }
    v.jwks = simdjson::to_string(root["jwks"].value());
    v.jwks_two = simdjson::to_string(root["jwks_two"].value());
    const simdjson::dom::object tokens = root["tokens"].get_object().value();
    for (const auto [name, entry] : tokens)
      v.tokens.emplace(name, Token{std::string(entry["token"].get_string().value()),
                                   std::string(entry["key"].get_string().value())});
    return v;
  }
};

inline std::chrono::system_clock::time_point at(double seconds) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(seconds)));
}

}  // namespace pylon::auth::test
