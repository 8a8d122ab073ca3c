// libFuzzer target for mitm/http1.h: drives a RequestReader, a
// ResponseReader (with fuzzed request contexts) or a chunked BodyDecoder over
// the input fed whole, in three pieces, and (for shorter inputs) one byte at
// a time, and checks that every way of feeding reports the same events and
// that every step keeps its contract; parsed heads must re-serialise to a
// head that parses to the same thing.
//
//   input: byte 0 selects the mode (% 3: requests, responses, chunked body),
//          byte 1 holds up to four response contexts (2 bits each: HEAD,
//          upgrade requested), the rest is the stream.
//   build: cmake -DTOLLGATE_FUZZ=ON (clang); seeds: tests/fuzz/corpus/mitm_http/
//   run:   ./mitm_http_fuzz -max_len=70000 NEW_CORPUS_DIR tests/fuzz/corpus/mitm_http
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mitm/http1.h"

namespace {

using namespace tollgate::mitm;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "mitm_http_fuzz: violated: %s\n", what);
    std::abort();
  }
}

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<ResponseContext> contextsFrom(uint8_t bits) {
  std::vector<ResponseContext> out;
  for (int i = 0; i < 4; ++i) {
    out.push_back(ResponseContext{(bits >> (2 * i) & 1) != 0, (bits >> (2 * i + 1) & 1) != 0});
  }
  return out;
}

void checkRequestRoundTrip(const RequestHead& head) {
  const std::string once = serialize(head);
  check(serializedSize(head) == once.size(), "serializedSize matches");
  RequestHeadParser p;
  const HeadResult r = p.feed(bytes(once));
  check(r.status == Status::Done && r.consumed == once.size(), "serialized request reparses");
  check(p.head() == head, "serialized request reparses to the same head");
}

void checkResponseRoundTrip(const ResponseHead& head, ResponseContext ctx) {
  const std::string once = serialize(head);
  ResponseHeadParser p(ctx);
  const HeadResult r = p.feed(bytes(once));
  check(r.status == Status::Done && r.consumed == once.size(), "serialized response reparses");
  check(p.head() == head, "serialized response reparses to the same head");
}

// What a reader reported: events in order, adjacent body pieces merged, so
// that different splits of the same stream compare equal.
struct Transcript {
  std::vector<std::pair<char, std::string>> events;
  void add(char tag, std::string payload) {
    if (tag == 'B' && !events.empty() && events.back().first == 'B') {
      events.back().second += payload;
      return;
    }
    events.emplace_back(tag, std::move(payload));
  }
  bool operator==(const Transcript&) const = default;
};

// Runs a reader over `in` delivered in pieces ending at `cuts` (and the end),
// keeping unconsumed bytes as an evbuffer would.
template <typename Reader, typename OnHead>
Transcript run(Reader& reader, std::string_view in, const std::vector<size_t>& cuts,
               OnHead&& onHead) {
  Transcript t;
  std::string buffered;
  size_t fed = 0;
  std::vector<size_t> points = cuts;
  points.push_back(in.size());
  for (size_t point : points) {
    if (point < fed || point > in.size()) {
      continue;
    }
    buffered.append(in.substr(fed, point - fed));
    fed = point;
    while (true) {
      const std::span<const uint8_t> view = bytes(buffered);
      const Step s = reader.next(view);
      check(s.consumed <= view.size(), "consumed within input");
      switch (s.event) {
        case Event::NeedMore:
          check(s.consumed == view.size(), "NeedMore consumes everything");
          break;
        case Event::Head:
          check(s.consumed > 0, "a head has bytes");
          t.add('H', onHead(reader));
          break;
        case Event::Body:
          check(!s.body.empty(), "Body carries bytes");
          check(s.body.data() >= view.data() &&
                    s.body.data() + s.body.size() <= view.data() + view.size(),
                "Body points into the input");
          t.add('B', std::string(reinterpret_cast<const char*>(s.body.data()), s.body.size()));
          break;
        case Event::End:
          t.add('E', {});
          break;
        case Event::Tunnel:
          check(s.consumed == 0, "Tunnel consumes nothing");
          t.add('T', std::to_string(buffered.size() + in.size() - fed));
          return t;
        case Event::Invalid:
          check(!s.reason.empty() && s.http_status >= 400, "Invalid has a reason and a status");
          t.add('I', std::string(s.reason));
          return t;
      }
      buffered.erase(0, s.consumed);
      if (s.event == Event::NeedMore) {
        break;
      }
    }
  }
  const Step s = reader.finish();
  t.add('F', s.event == Event::Invalid ? std::string(s.reason)
                                       : (s.event == Event::End ? "end" : "clean"));
  return t;
}

Transcript runRequests(std::string_view in, const std::vector<size_t>& cuts) {
  RequestReader r;
  return run(r, in, cuts, [](RequestReader& rr) {
    checkRequestRoundTrip(rr.head());
    return serialize(rr.head());
  });
}

Transcript runResponses(std::string_view in, const std::vector<ResponseContext>& ctx,
                        const std::vector<size_t>& cuts) {
  ResponseReader r;
  for (const ResponseContext& c : ctx) {
    r.expect(c);
  }
  size_t answered = 0;
  return run(r, in, cuts, [&](ResponseReader& rr) {
    check(answered < ctx.size(), "no more final responses than requests");
    checkResponseRoundTrip(rr.head(), ctx[answered]);
    if (!rr.head().interim()) {
      ++answered;
    }
    return serialize(rr.head());
  });
}

std::string runChunked(std::string_view in, const std::vector<size_t>& cuts) {
  BodyDecoder d(BodyFraming{BodyKind::Chunked, 0});
  std::string body;
  std::string buffered;
  size_t fed = 0;
  size_t used = 0;
  std::vector<size_t> points = cuts;
  points.push_back(in.size());
  for (size_t point : points) {
    if (point < fed || point > in.size()) {
      continue;
    }
    buffered.append(in.substr(fed, point - fed));
    fed = point;
    while (!buffered.empty()) {
      const BodyResult r = d.feed(bytes(buffered));
      check(r.consumed <= buffered.size(), "decoder consumed within input");
      check(d.buffered() <= kMaxTrailerBytes, "decoder holds at most the trailer cap");
      body.append(reinterpret_cast<const char*>(r.data.data()), r.data.size());
      buffered.erase(0, r.consumed);
      used += r.consumed;
      if (r.status == Status::Invalid) {
        return "I" + std::string(r.reason);
      }
      if (r.status == Status::Done) {
        check(d.received() == body.size(), "received counts the body");
        return "D" + std::to_string(used) + ":" + body;
      }
      check(r.consumed > 0, "decoder progress");
    }
  }
  return "N" + body;
}

std::vector<size_t> cutsFrom(std::string_view in) {
  if (in.empty()) {
    return {};
  }
  const auto b = [&](size_t i) { return static_cast<uint8_t>(in[i % in.size()]); };
  size_t a = (b(0) * 257u + b(in.size() / 2)) % (in.size() + 1);
  size_t c = (b(in.size() - 1) * 131u + b(in.size() / 3)) % (in.size() + 1);
  if (a > c) {
    std::swap(a, c);
  }
  return {a, c};
}

std::vector<size_t> everyByte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) {
    cuts.push_back(i);
  }
  return cuts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  const int mode = data[0] % 3;
  const std::vector<ResponseContext> ctx = contextsFrom(data[1]);
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const bool bytewise = in.size() <= 4096;

  if (mode == 0) {
    const Transcript whole = runRequests(in, {});
    check(runRequests(in, cutsFrom(in)) == whole, "requests: split equals whole");
    if (bytewise) {
      check(runRequests(in, everyByte(in.size())) == whole, "requests: bytewise equals whole");
    }
  } else if (mode == 1) {
    const Transcript whole = runResponses(in, ctx, {});
    check(runResponses(in, ctx, cutsFrom(in)) == whole, "responses: split equals whole");
    if (bytewise) {
      check(runResponses(in, ctx, everyByte(in.size())) == whole,
            "responses: bytewise equals whole");
    }
  } else {
    const std::string whole = runChunked(in, {});
    check(runChunked(in, cutsFrom(in)) == whole, "chunked: split equals whole");
    if (bytewise) {
      check(runChunked(in, everyByte(in.size())) == whole, "chunked: bytewise equals whole");
    }
  }
  return 0;
}
