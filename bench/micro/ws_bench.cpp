// Micro-benchmarks of the RFC 6455 codec hot path: frame parsing with unmasking (server role),
// masking alone, and UTF-8 validation, on 16 B, 1 KiB and 1 MiB payloads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "ws/frame_parser.hpp"

namespace pylon::ws {
namespace {

constexpr MaskingKey kKey = {0x9a, 0x3c, 0x71, 0xe5};

// Counts delivered bytes so the compiler cannot drop the work.
struct CountingHandler {
  std::uint64_t bytes = 0;
  void on_message_data(Opcode, std::span<const std::uint8_t> chunk, bool, bool) {
    bytes += chunk.size();
  }
  void on_control_frame_data(Opcode, std::span<const std::uint8_t> chunk, bool, bool) {
    bytes += chunk.size();
  }
};

std::vector<std::uint8_t> text_payload(std::size_t size) {
  // Mostly ASCII with some 2- and 3-byte characters, like chat/JSON traffic.
  static constexpr char kSample[] = "{\"topic\":\"caf\xc3\xa9\",\"v\":\"\xe2\x82\xac 42\"}";
  std::vector<std::uint8_t> out;
  out.reserve(size);
  while (out.size() < size) {
    for (const char* c = kSample; *c != '\0' && out.size() < size; ++c) {
      out.push_back(static_cast<std::uint8_t>(*c));
    }
  }
  // Never end inside a code point.
  while (!out.empty() && (out.back() & 0x80) != 0) out.back() = 'x';
  return out;
}

// Enough masked frames of `size` bytes to fill about 1 MiB (at least one), encoded once.
std::vector<std::uint8_t> masked_frames(Opcode opcode, std::size_t size, std::size_t& count) {
  const auto payload = text_payload(size);
  count = std::max<std::size_t>(1, (1u << 20) / (size + kMaxFrameHeaderSize));
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint8_t header[kMaxFrameHeaderSize];
    const std::size_t n = write_frame_header(header, opcode, size, true, false, &kKey);
    out.insert(out.end(), header, header + n);
    const std::size_t start = out.size();
    out.insert(out.end(), payload.begin(), payload.end());
    apply_mask(std::span(out).subspan(start), kKey);
  }
  return out;
}

void run_parse(benchmark::State& state, Opcode opcode) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::size_t count = 0;
  const auto frames = masked_frames(opcode, size, count);
  std::vector<std::uint8_t> buffer(frames.size());
  CountingHandler handler;
  FrameParser<CountingHandler> parser(Role::server, kUnlimitedMessageSize);
  for (auto _ : state) {
    // Parsing unmasks in place, so each iteration starts from a fresh copy; the copy is timed
    // too, but it is what a receive path costs anyway (bytes land in a buffer first).
    state.PauseTiming();
    std::copy(frames.begin(), frames.end(), buffer.begin());
    state.ResumeTiming();
    if (parser.feed(buffer, handler) != ProtocolError::none) state.SkipWithError("parse error");
  }
  benchmark::DoNotOptimize(handler.bytes);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * count * size));
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(state.iterations() * count),
                                                  benchmark::Counter::kIsRate);
}

void BM_ParseMaskedBinary(benchmark::State& state) {
  run_parse(state, Opcode::binary);
}
void BM_ParseMaskedText(benchmark::State& state) {
  run_parse(state, Opcode::text);
}

void BM_ApplyMask(benchmark::State& state) {
  std::vector<std::uint8_t> data = text_payload(static_cast<std::size_t>(state.range(0)) + 1);
  // Offset by one byte so the unaligned path is what is measured.
  std::span<std::uint8_t> view(data.data() + 1, data.size() - 1);
  for (auto _ : state) {
    apply_mask(view, kKey, 1);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * view.size()));
}

void BM_Utf8Validate(benchmark::State& state) {
  const auto data = text_payload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    Utf8Validator validator;
    bool ok = validator.feed(data) && validator.complete();
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

void BM_Utf8ValidateAscii(benchmark::State& state) {
  const std::vector<std::uint8_t> data(static_cast<std::size_t>(state.range(0)), 'a');
  for (auto _ : state) {
    bool ok = is_valid_utf8(data);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

BENCHMARK(BM_ParseMaskedBinary)->Arg(16)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_ParseMaskedText)->Arg(16)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_ApplyMask)->Arg(16)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_Utf8Validate)->Arg(16)->Arg(1024)->Arg(1 << 20);
BENCHMARK(BM_Utf8ValidateAscii)->Arg(16)->Arg(1024)->Arg(1 << 20);

}  // namespace
}  // namespace pylon::ws
