// permessage-deflate (RFC 7692) on a server connection: what the upgrade agreed, inflating what
// arrives with RSV1, and compressing what goes out. Part of Connection (connection.hpp).
//
// Two strategies (CompressionMode): shared (no context takeover) compresses a broadcast once per
// window size for every subscriber and inflates with one decompressor per loop; dedicated gives
// the connection its own windows both ways, so a broadcast is compressed per subscriber.
#include "server/connection.hpp"
#include "server/worker.hpp"

namespace pylon::detail {

void Connection::agree_compression(const ws::DeflateParams& params) {
  // RFC 7692 §6: RSV1 now marks a compressed message (no frame has been parsed yet).
  deflate_ = true;
  server_window_bits_ = ws::clamp_window_bits(params.server_max_window_bits);
  server_context_takeover_ = !params.server_no_context_takeover;
  session_.enable_compression();
  const CompressionSettings& settings = route_->compression;
  if (settings.mode == CompressionMode::dedicated)
    spill().dedicated = std::make_unique<DedicatedDeflate>(
        DedicatedDeflate{std::nullopt, std::nullopt, params.client_max_window_bits,
                         params.client_no_context_takeover});
}

ws::MessageInflater& Connection::own_inflater(DedicatedDeflate& own) {
  if (!own.inflater) own.inflater.emplace(own.client_window_bits, own.client_no_context_takeover);
  return *own.inflater;
}

ws::MessageDeflater& Connection::own_deflater(DedicatedDeflate& own) {
  if (!own.deflater)
    own.deflater.emplace(std::uint8_t{server_window_bits_},
                         static_cast<int>(route_->compression.memory_level),
                         !server_context_takeover_);
  return *own.deflater;
}

ws::InflateStatus Connection::session_inflate(std::span<const std::uint8_t> piece, bool first,
                                              bool last, std::uint64_t limit,
                                              std::span<const std::uint8_t>& message) {
  DedicatedDeflate* own = dedicated();
  ws::MessageInflater::Status status;
  std::size_t compressed_size = piece.size();
  std::string* inflated = nullptr;
  // The inflated size counts against the limit while inflating: a bomb stops at the limit.
  if (first && last) {
    // The common case, inflated into the loop's buffer. Shared mode agreed
    // client_no_context_takeover, so one decompressor per loop serves everyone.
    inflated = &worker().inflate_buffer();
    inflated->clear();
    status = (own ? own_inflater(*own) : worker().shared_inflater())
                 .inflate(piece, true, limit, *inflated);
  } else {
    // Spread over several reads: a decompressor of its own until the message ends.
    Spill& spill = this->spill();
    if (own == nullptr && !spill.inflater) spill.inflater = worker().borrow_inflater();
    inflated = &spill.buffers.message;
    status = (own ? own_inflater(*own) : *spill.inflater).inflate(piece, last, limit, *inflated);
    spill.compressed_size += piece.size();
    if (status == ws::MessageInflater::Status::ok && !last) return ws::InflateStatus::more;
    compressed_size = std::exchange(spill.compressed_size, 0);
    if (spill.inflater) worker().return_inflater(std::move(spill.inflater));
  }
  if (status == ws::MessageInflater::Status::too_large) return ws::InflateStatus::too_large;
  if (status == ws::MessageInflater::Status::corrupt) return ws::InflateStatus::corrupt;
  const ServerMetrics& counters = *worker().server().counters;
  counters.compressed_bytes[0].add(compressed_size);
  counters.uncompressed_bytes[0].add(inflated->size());
  message = std::span(reinterpret_cast<const std::uint8_t*>(inflated->data()), inflated->size());
  return ws::InflateStatus::done;
}

SendStatus Connection::send_compressed(ws::Opcode opcode, std::span<const std::uint8_t> payload) {
  // RFC 7692 §7.2.1: compress, drop the 00 00 ff ff tail (the codec does), set RSV1.
  std::string& compressed = worker().deflate_buffer();
  compressed.clear();
  DedicatedDeflate* own = dedicated();
  ws::MessageDeflater& deflater =
      own ? own_deflater(*own) : worker().shared_deflater(server_window_bits_);
  deflater.compress(payload, compressed);
  const ServerMetrics& counters = *worker().server().counters;
  counters.compressions.add();
  counters.compressed_bytes[1].add(compressed.size());
  counters.uncompressed_bytes[1].add(payload.size());
  return send_frame(
      opcode,
      std::span(reinterpret_cast<const std::uint8_t*>(compressed.data()), compressed.size()), true);
}

const std::string& Connection::compressed_frame_for(const pubsub::Message& message) {
  if (message.payload_size < route_->compression.threshold) return message.frame;
  // Compressed once per (message, window size) and shared by every subscriber that agreed to it.
  const std::uint8_t bits = server_window_bits_;
  bool created = false;
  const std::string& frame =
      message.compressed_frame(bits, worker().shared_deflater(bits), created);
  if (created) worker().server().counters->compressions.add();
  return frame;
}

std::size_t Connection::write_own_frames(std::span<const pubsub::MessageRef> run) {
  // The frames are built in the worker's scratch buffer and written with one send. A message is
  // compressed only once it is sure to go out, since the peer's window must hold exactly what
  // our compressor's does: past max_backpressure it is not compressed at all.
  const std::size_t limit = worker().server().config.max_backpressure;
  const ServerMetrics& counters = *worker().server().counters;
  DedicatedDeflate& own = *dedicated();
  std::string& frames = worker().frame_buffer();
  frames.clear();
  std::size_t index = 0;
  for (; index < run.size(); ++index) {
    const pubsub::Message& message = *run[index];
    // Behind a backlog every message must fit; with none, the first goes out whatever its size.
    if ((index > 0 || buffered_amount() > 0) &&
        buffered_amount() + frames.size() + message.frame.size() > limit)
      break;
    if (message.payload_size < route_->compression.threshold) {
      frames += message.frame;
      continue;
    }
    std::string& compressed = worker().deflate_buffer();
    compressed.clear();
    const std::string_view payload = message.payload();
    own_deflater(own).compress(payload, compressed);
    counters.compressions.add();
    counters.compressed_bytes[1].add(compressed.size());
    counters.uncompressed_bytes[1].add(payload.size());
    std::uint8_t header[ws::kMaxFrameHeaderSize];
    frames.append(reinterpret_cast<const char*>(header),
                  ws::write_frame_header(header, message.opcode, compressed.size(), true, true));
    frames += compressed;
  }
  std::size_t taken = 0;
  if (buffered_amount() == 0 && with_transport([&](const auto& transport) {
                                  return transport.send(frames.data(), frames.size(), taken);
                                }) != 0) {
    peer_gone();
    return run.size();
  }
  if (taken < frames.size()) {
    outbox_.enqueue(std::string_view(frames).substr(taken));
    update_interest();
  }
  return index;
}

}  // namespace pylon::detail
