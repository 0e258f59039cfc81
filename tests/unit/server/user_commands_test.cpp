#include "server/user_commands.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pylon {
namespace {

UserCommand parsed(ApiEndpoint kind, std::string_view body) {
  auto result = parse_user_command(kind, body);
  if (const auto* error = std::get_if<std::string>(&result)) ADD_FAILURE() << *error;
  return std::get<UserCommand>(result);
}

std::string error_of(ApiEndpoint kind, std::string_view body) {
  auto result = parse_user_command(kind, body);
  const auto* error = std::get_if<std::string>(&result);
  return error != nullptr ? *error : "(accepted)";
}

TEST(UserCommands, DisconnectHasADocumentedDefaultCodeAndReason) {
  const UserCommand command = parsed(ApiEndpoint::disconnect, R"({"user":"alice"})");
  EXPECT_EQ(command.user, "alice");
  EXPECT_EQ(command.code, 4002);
  EXPECT_EQ(command.reason, "disconnected by the server");

  const UserCommand banned = parsed(
      ApiEndpoint::disconnect, R"({"user":"bob","code":4500,"reason":"banned \u00e9","extra":1})");
  EXPECT_EQ(banned.code, 4500);
  EXPECT_EQ(banned.reason, "banned \xc3\xa9");
}

TEST(UserCommands, BadBodiesNameTheField) {
  const auto disconnect = ApiEndpoint::disconnect;
  EXPECT_EQ(error_of(disconnect, "[]"), "body must be a JSON object");
  EXPECT_EQ(error_of(disconnect, "{"), "body must be a JSON object");
  const std::string user_error =
      "user (the connection token's sub, a string of 1-1024 bytes) is required";
  EXPECT_EQ(error_of(disconnect, "{}"), user_error);
  EXPECT_EQ(error_of(disconnect, R"({"user":""})"), user_error);
  EXPECT_EQ(error_of(disconnect, R"({"user":7})"), user_error);
  EXPECT_EQ(error_of(disconnect, R"({"user":")" + std::string(1025, 'u') + "\"}"), user_error);
  const std::string code_error = "code must be an integer from 4000 to 4999";
  EXPECT_EQ(error_of(disconnect, R"({"user":"a","code":1000})"), code_error);
  EXPECT_EQ(error_of(disconnect, R"({"user":"a","code":5000})"), code_error);
  EXPECT_EQ(error_of(disconnect, R"({"user":"a","code":"4002"})"), code_error);
  EXPECT_EQ(error_of(disconnect, R"({"user":"a","reason":")" + std::string(124, 'r') + "\"}"),
            "reason must be a string of at most 123 bytes");
  EXPECT_EQ(error_of(disconnect, R"({"user":"a","reason":")" + std::string(123, 'r') + "\"}"),
            "(accepted)");
  EXPECT_EQ(error_of(ApiEndpoint::unsubscribe, R"({"user":"a"})"), "topic (a string) is required");
  EXPECT_EQ(error_of(ApiEndpoint::unsubscribe, R"({"user":"a","topic":"no spaces"})"),
            "topic: invalid topic name");
}

TEST(UserCommands, TheClusterMessageCarriesTheSameCommand) {
  for (const auto& [kind, body] :
       {std::pair{ApiEndpoint::disconnect, R"({"user":"al\"ice","code":4100,"reason":"r\n"})"},
        std::pair{ApiEndpoint::unsubscribe, R"({"user":"alice","topic":"chat:room-1"})"}}) {
    const UserCommand command = parsed(kind, body);
    const std::string message = cluster_message(command);
    auto back = parse_cluster_message(message);
    ASSERT_TRUE(std::holds_alternative<UserCommand>(back)) << message;
    EXPECT_EQ(std::get<UserCommand>(back), command) << message;
  }
  EXPECT_EQ(cluster_message(parsed(ApiEndpoint::unsubscribe, R"({"user":"u","topic":"t"})")),
            R"(unsubscribe {"user":"u","topic":"t"})");
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_cluster_message("publish {}")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_cluster_message("disconnect")));
}

}  // namespace
}  // namespace pylon
