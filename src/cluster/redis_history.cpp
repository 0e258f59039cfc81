#include "cluster/redis_history.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

#include "obs/log.hpp"

namespace pylon::cluster {
namespace {

// KEYS: stream, meta. ARGV: channel, message header up to the offset, head, label, tail, history
// size, TTL (ms), epoch for a new stream, opcode, instance, sequence number. Answers {offset,
// epoch}. Idempotency: the meta hash keeps, per instance, the latest sequence number it stored on
// the topic, and each entry its instance:sequence. An instance's commands run in the order it sent
// them (and sends them again in that order), so a sequence number at or below the latest was
// stored: the resend answers that entry's offset ({0, epoch} when it is no longer kept) and stores
// nothing. One hash field per instance and topic, instead of a key per publish.
constexpr std::string_view kAppendScript = R"lua(
local sent = 'i:' .. ARGV[10]
local sequence = tonumber(ARGV[11])
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if epoch and sequence <= tonumber(redis.call('HGET', KEYS[2], sent) or '0') then
  local tag = ARGV[10] .. ':' .. ARGV[11]
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-')) do
    if entry[2][6] == tag then return {tonumber(string.match(entry[1], '^%d+')), epoch} end
  end
  return {0, epoch}
end
if not epoch then
  epoch = ARGV[8]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 'top', 1)
redis.call('HSET', KEYS[2], sent, sequence)
local payload = ARGV[3]
if ARGV[4] ~= '' then payload = payload .. ARGV[4] .. offset end
payload = payload .. ARGV[5]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[6], offset .. '-0', 't', string.format('%d', now_ms),
           'o', ARGV[9], 'i', ARGV[10] .. ':' .. ARGV[11], 'd', payload)
redis.call('PUBLISH', ARGV[1], ARGV[2] .. offset .. ' ' .. epoch .. ' ' .. payload)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return {offset, epoch}
)lua";

// KEYS: stream, meta. ARGV: the first offset wanted (-1: the position only), "1" for the latest
// publication only, TTL (ms; 0: no TTL filter, and a topic without a stream is not created),
// epoch for a new stream. Answers {top, epoch, offset, opcode, payload, offset, ...}.
constexpr std::string_view kReadScript = R"lua(
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local ttl = tonumber(ARGV[3])
if not epoch then
  if ttl == 0 then return {0, ''} end
  epoch = ARGV[4]
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local result = {tonumber(redis.call('HGET', KEYS[2], 'top') or '0'), epoch}
local first = tonumber(ARGV[1])
if first < 0 then return result end
local entries
if ARGV[2] == '1' then
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
else
  entries = redis.call('XRANGE', KEYS[1], first .. '-0', '+')
end
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - ttl
for _, entry in ipairs(entries) do
  local fields = entry[2]
  if ttl == 0 or tonumber(fields[2]) > oldest then
    table.insert(result, tonumber(string.match(entry[1], '^%d+')))
    table.insert(result, fields[4])
    table.insert(result, fields[8])
  end
end
return result
)lua";

std::string decimal(std::uint64_t value) {
  char digits[20];
  const auto written = std::to_chars(digits, digits + sizeof digits, value);
  return std::string(digits, written.ptr);
}

std::string hex(const InstanceId& id) {
  std::string text;
  for (const std::uint8_t byte : id) {
    text += "0123456789abcdef"[byte >> 4];
    text += "0123456789abcdef"[byte & 0xF];
  }
  return text;
}

std::string_view text_of(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STRING ? std::string_view(reply->str, reply->len)
                                           : std::string_view();
}

// {top, epoch, (offset, opcode, payload)*}; nullopt when it is not that shape.
std::optional<pubsub::HistoryRead> parse_read(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || (reply->elements - 2) % 3 != 0 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER)
    return std::nullopt;
  pubsub::HistoryRead read;
  read.top = static_cast<std::uint64_t>(reply->element[0]->integer);
  read.epoch = text_of(reply->element[1]);
  for (std::size_t index = 2; index < reply->elements; index += 3) {
    if (reply->element[index]->type != REDIS_REPLY_INTEGER) return std::nullopt;
    read.entries.push_back({.offset = static_cast<std::uint64_t>(reply->element[index]->integer),
                            .opcode = text_of(reply->element[index + 1]) == "2" ? ws::Opcode::binary
                                                                                : ws::Opcode::text,
                            .payload = std::string(text_of(reply->element[index + 2]))});
  }
  return read;
}

}  // namespace

RedisHistory::RedisHistory(std::string prefix, const InstanceId& instance,
                           const pubsub::DeliverFunction& deliver, MetricsRegistry& metrics)
    : prefix_(std::move(prefix)),
      header_text_(history_message_header(instance, ws::Opcode::text)),
      header_binary_(history_message_header(instance, ws::Opcode::binary)),
      instance_(hex(instance)),
      deliver_(deliver),
      gap_reads_(metrics.counter(
          "pylon_history_gap_reads_total",
          "Reads of a topic's Redis history to fill a gap in the offsets this instance received")),
      gap_lost_(metrics.counter(
          "pylon_history_gap_lost_total",
          "Publications a gap read no longer found in the Redis history (trimmed or expired)")) {}

std::string_view RedisHistory::append_script() noexcept {
  return kAppendScript;
}
std::string_view RedisHistory::read_script() noexcept {
  return kReadScript;
}

void RedisHistory::publisher_ready(redisAsyncContext* publisher) {
  publisher_ = publisher;
  for (const Command& command : pending_) send(command);
}

void RedisHistory::push(Command command) {
  pending_.push_back(std::move(command));
  if (publisher_ != nullptr) send(pending_.back());
}

void RedisHistory::send(const Command& command) {
  // A few arguments per command, sent while Redis history is on: the allocation is per publish,
  // as hiredis's own callback record is.
  std::vector<const char*> argv{"EVALSHA"};
  std::vector<std::size_t> lengths{7};
  for (const std::string& argument : command.arguments) {
    argv.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  redisAsyncCommandArgv(publisher_, &RedisHistory::on_reply, this, static_cast<int>(argv.size()),
                        argv.data(), lengths.data());
}

void RedisHistory::append(pubsub::HistoryAppend publication, pubsub::AppendDone done) {
  const std::string key = prefix_ + "history:" + publication.topic;
  Command command{.kind = Kind::append, .topic = std::move(publication.topic)};
  command.arguments = {append_sha,
                       "2",
                       key,
                       prefix_ + "history-meta:" + command.topic,
                       prefix_ + command.topic,
                       publication.opcode == ws::Opcode::binary ? header_binary_ : header_text_,
                       std::move(publication.head),
                       std::move(publication.label),
                       std::move(publication.tail),
                       decimal(publication.policy.size),
                       decimal(publication.policy.ttl_ms),
                       pubsub::new_epoch(),
                       publication.opcode == ws::Opcode::binary ? "2" : "1",
                       instance_,
                       decimal(next_sequence_++)};
  command.append_done = std::move(done);
  push(std::move(command));
}

void RedisHistory::read(std::string topic, const pubsub::HistoryPolicy& policy,
                        std::optional<std::uint64_t> since, pubsub::ReadDone done) {
  Reader reader{since, std::move(done)};
  if (const auto found = cursors_.find(topic);
      found != cursors_.end() && !found->second.confirmed) {
    std::vector<WaitingReads>& waiting = found->second.reads;
    auto group = std::find_if(waiting.begin(), waiting.end(), [&](const WaitingReads& reads) {
      return reads.policy.latest_only == policy.latest_only && reads.policy.ttl_ms == policy.ttl_ms;
    });
    if (group == waiting.end()) group = waiting.insert(waiting.end(), {.policy = policy});
    group->readers.push_back(std::move(reader));
    return;
  }
  std::vector<Reader> readers;
  readers.push_back(std::move(reader));
  push(read_command(std::move(topic), policy, std::move(readers)));
}

RedisHistory::Command RedisHistory::read_command(std::string topic,
                                                 const pubsub::HistoryPolicy& policy,
                                                 std::vector<Reader> readers) {
  std::optional<std::uint64_t> first;
  for (const Reader& reader : readers)
    if (reader.since && (!first || *reader.since < *first)) first = reader.since;
  Command command{.kind = Kind::read, .topic = std::move(topic)};
  command.arguments = {read_sha,
                       "2",
                       prefix_ + "history:" + command.topic,
                       prefix_ + "history-meta:" + command.topic,
                       first ? decimal(*first) : "-1",
                       policy.latest_only ? "1" : "0",
                       decimal(policy.ttl_ms),
                       pubsub::new_epoch()};
  command.readers = std::move(readers);
  command.latest_only = policy.latest_only;
  return command;
}

// A read made for one answers it as Redis answered. Made for several, each reader gets the position
// and the entries from its own first offset on (latest-only: the latest, whatever offset it
// gave), none when it asked for the position only.
void RedisHistory::answer_readers(Command& read_command, pubsub::HistoryRead& read) {
  if (read_command.readers.size() == 1) return read_command.readers.front().done(read);
  for (Reader& reader : read_command.readers) {
    pubsub::HistoryRead part{.top = read.top, .epoch = read.epoch};
    if (reader.since)
      for (const pubsub::HistoryEntry& entry : read.entries)
        if (read_command.latest_only || entry.offset >= *reader.since)
          part.entries.push_back(entry);
    reader.done(part);
  }
}

void RedisHistory::track(std::string_view topic) {
  cursors_.try_emplace(std::string(topic));
}

void RedisHistory::forget(std::string_view topic) {
  cursors_.erase(std::string(topic));
}

void RedisHistory::subscribed(std::string_view topic) {
  const auto found = cursors_.find(std::string(topic));
  if (found == cursors_.end()) return;
  Cursor& cursor = found->second;
  cursor.confirmed = true;
  std::vector<WaitingReads> reads;
  reads.swap(cursor.reads);
  for (WaitingReads& group : reads)
    push(read_command(std::string(topic), group.policy, std::move(group.readers)));
  if (!cursor.epoch.empty() && !cursor.filling) start_gap_read(topic, cursor);
}

void RedisHistory::subscriber_lost() noexcept {
  for (auto& [topic, cursor] : cursors_) cursor.confirmed = false;
}

void RedisHistory::start_gap_read(std::string_view topic, Cursor& cursor) {
  cursor.filling = true;
  gap_reads_.add();
  Command command{.kind = Kind::gap, .topic = std::string(topic)};
  // TTL 0: every kept publication (a live subscriber wants even an old one it missed), and no
  // stream created for a topic whose history is gone.
  command.arguments = {read_sha,
                       "2",
                       prefix_ + "history:" + command.topic,
                       prefix_ + "history-meta:" + command.topic,
                       decimal(cursor.last + 1),
                       "0",
                       "0",
                       ""};
  push(std::move(command));
}

bool RedisHistory::on_message(std::string_view topic, std::string_view bytes) {
  const auto message = decode_history_message(bytes);
  if (!message) return false;
  const auto found = cursors_.find(std::string(topic));
  if (found == cursors_.end()) return true;  // no interest any more
  Cursor& cursor = found->second;
  if (cursor.filling) {
    cursor.held.push_back({std::string(message->epoch),
                           {message->offset, message->opcode, std::string(message->payload)}});
    return true;
  }
  accept(topic, cursor, message->epoch, message->offset, message->opcode, message->payload);
  return true;
}

void RedisHistory::accept(std::string_view topic, Cursor& cursor, std::string_view epoch,
                          std::uint64_t offset, ws::Opcode opcode, std::string_view payload) {
  if (epoch == cursor.epoch && offset <= cursor.last) return;  // a gap read delivered it
  if (epoch == cursor.epoch && offset > cursor.last + 1) {
    cursor.held.push_back({std::string(epoch), {offset, opcode, std::string(payload)}});
    return start_gap_read(topic, cursor);
  }
  // The next one; or the first one seen, or one of a new epoch (Redis lost the stream: its
  // offsets start again, and subscribers that recover later are told recovered: false).
  cursor.epoch = epoch;
  cursor.last = offset;
  deliver_(topic, opcode, payload, offset);
}

void RedisHistory::on_gap_read(std::string_view topic, pubsub::HistoryRead& read) {
  const auto found = cursors_.find(std::string(topic));
  if (found == cursors_.end()) return;
  Cursor& cursor = found->second;
  cursor.filling = false;
  if (read.epoch == cursor.epoch) {
    for (const pubsub::HistoryEntry& entry : read.entries) {
      if (entry.offset <= cursor.last) continue;
      gap_lost_.add(entry.offset - cursor.last - 1);
      cursor.last = entry.offset;
      deliver_(topic, entry.opcode, entry.payload, entry.offset);
    }
  }
  // What arrived live meanwhile, past what the read delivered. A jump left here is a gap the
  // stream no longer holds: counted, never waited for.
  std::vector<Held> held;
  held.swap(cursor.held);
  for (Held& item : held) {
    if (item.epoch == cursor.epoch && item.entry.offset <= cursor.last) continue;
    if (item.epoch == cursor.epoch) gap_lost_.add(item.entry.offset - cursor.last - 1);
    cursor.epoch = item.epoch;
    cursor.last = item.entry.offset;
    deliver_(topic, item.entry.opcode, item.entry.payload, item.entry.offset);
  }
}

void RedisHistory::on_reply(redisAsyncContext*, void* reply, void* self) {
  // No reply: the context is being freed with the command unanswered; it stays pending and is
  // sent again on the next connection.
  if (reply != nullptr) static_cast<RedisHistory*>(self)->on_reply(reply);
}

void RedisHistory::on_reply(void* reply_pointer) {
  const auto* reply = static_cast<const redisReply*>(reply_pointer);
  if (pending_.empty()) return;
  Command command = std::move(pending_.front());
  pending_.pop_front();
  if (reply->type == REDIS_REPLY_ERROR) {
    static obs::LogRateLimit limit(1);
    limit.log(obs::LogLevel::warn, "redis refused a history command",
              {{"topic", command.topic}, {"error", std::string_view(reply->str, reply->len)}});
  }
  switch (command.kind) {
    case Kind::append: {
      const bool stored = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                          reply->element[0]->type == REDIS_REPLY_INTEGER;
      if (!stored) return command.append_done(0, {});
      return command.append_done(static_cast<std::uint64_t>(reply->element[0]->integer),
                                 text_of(reply->element[1]));
    }
    case Kind::read: {
      // An error answer reads as an empty stream of no epoch: the subscriber is not recovered.
      pubsub::HistoryRead read = parse_read(reply).value_or(pubsub::HistoryRead{});
      if (const auto found = cursors_.find(command.topic);
          found != cursors_.end() && found->second.epoch.empty() && !read.epoch.empty()) {
        // This instance's first position on the topic: live publications follow it.
        found->second.epoch = read.epoch;
        found->second.last = read.top;
      }
      return answer_readers(command, read);
    }
    case Kind::gap: {
      pubsub::HistoryRead read = parse_read(reply).value_or(pubsub::HistoryRead{});
      return on_gap_read(command.topic, read);
    }
  }
}

}  // namespace pylon::cluster
