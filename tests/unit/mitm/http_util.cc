#include "http_util.h"

#include <algorithm>

namespace tollgate::mitm {

void PrintTo(Status s, std::ostream* os) {
  switch (s) {
    case Status::NeedMore:
      *os << "NeedMore";
      return;
    case Status::Done:
      *os << "Done";
      return;
    case Status::Invalid:
      *os << "Invalid";
      return;
  }
}

void PrintTo(const HeadResult& r, std::ostream* os) {
  PrintTo(r.status, os);
  *os << "{consumed=" << r.consumed << " reason=" << r.reason << " status=" << r.http_status << "}";
}

namespace testutil {
namespace {

template <typename Parser, typename Head>
HeadResult feedHead(Parser& parser, std::string_view input, size_t piece, Head* out) {
  if (piece == 0) {
    piece = input.size() + 1;
  }
  std::string buffered;
  size_t fed = 0;
  HeadResult r;
  while (true) {
    const size_t n = std::min(piece, input.size() - fed);
    buffered.append(input.substr(fed, n));
    fed += n;
    r = parser.feed(bytes(buffered));
    if (r.status == Status::Done) {
      r.consumed = fed - buffered.size() + r.consumed;
      break;
    }
    if (r.status == Status::Invalid) {
      break;
    }
    buffered.erase(0, r.consumed);
    if (fed == input.size()) {
      r.consumed = fed;
      break;
    }
  }
  if (out != nullptr && r.status == Status::Done) {
    *out = parser.head();
  }
  return r;
}

std::string describe(const RequestHead& h) { return "head " + serialize(h); }
std::string describe(const ResponseHead& h) { return "head " + serialize(h); }

template <typename Reader>
Transcript run(Reader& reader, std::string_view input, const std::vector<size_t>& cuts, bool eof) {
  Transcript t;
  auto record = [&](std::string e) {
    if (e.rfind("body ", 0) == 0 && !t.events.empty() && t.events.back().rfind("body ", 0) == 0) {
      t.events.back().append(e.substr(5));
      return;
    }
    t.events.push_back(std::move(e));
  };
  std::string buffered;
  size_t fed = 0;
  std::vector<size_t> points = cuts;
  points.push_back(input.size());
  bool stop = false;
  for (size_t point : points) {
    point = std::min(point, input.size());
    if (point < fed) {
      continue;
    }
    buffered.append(input.substr(fed, point - fed));
    fed = point;
    while (!stop) {
      Step s = reader.next(bytes(buffered));
      switch (s.event) {
        case Event::NeedMore:
          break;
        case Event::Head:
          record(describe(reader.head()));
          break;
        case Event::Body:
          record("body " + text(s.body));
          break;
        case Event::End:
          record("end");
          break;
        case Event::Tunnel:
          record("tunnel");
          stop = true;
          break;
        case Event::Invalid:
          record("invalid " + std::string(s.reason) + " " + std::to_string(s.http_status));
          stop = true;
          break;
      }
      buffered.erase(0, s.consumed);
      if (s.event == Event::NeedMore) {
        break;
      }
    }
  }
  if (stop) {
    if (t.events.back() == "tunnel") {
      t.events.back() += " " + std::to_string(buffered.size() + (input.size() - fed));
    }
    return t;
  }
  if (eof) {
    Step s = reader.finish();
    switch (s.event) {
      case Event::End:
        record("eof end");
        break;
      case Event::Invalid:
        record("eof invalid " + std::string(s.reason));
        break;
      default:
        record("eof clean");
        break;
    }
  }
  return t;
}

}  // namespace

HeadResult feedRequestHead(std::string_view input, size_t piece, RequestHead* out) {
  RequestHeadParser p;
  return feedHead(p, input, piece, out);
}

HeadResult feedResponseHead(std::string_view input, size_t piece, ResponseContext ctx,
                            ResponseHead* out) {
  ResponseHeadParser p(ctx);
  return feedHead(p, input, piece, out);
}

void PrintTo(const Transcript& t, std::ostream* os) {
  for (const std::string& e : t.events) {
    *os << "\n  [" << e << "]";
  }
}

Transcript runRequests(std::string_view input, const std::vector<size_t>& cuts, bool eof) {
  RequestReader reader;
  return run(reader, input, cuts, eof);
}

Transcript runResponses(std::string_view input, const std::vector<ResponseContext>& contexts,
                        const std::vector<size_t>& cuts, bool eof) {
  ResponseReader reader;
  for (const ResponseContext& c : contexts) {
    reader.expect(c);
  }
  return run(reader, input, cuts, eof);
}

std::vector<size_t> everyByte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) {
    cuts.push_back(i);
  }
  return cuts;
}

Decoded decodeBody(BodyFraming framing, std::string_view input, size_t piece) {
  if (piece == 0) {
    piece = input.size() + 1;
  }
  BodyDecoder d(framing);
  Decoded out;
  size_t pos = 0;  // bytes of input consumed
  std::string buffered;
  size_t fed = 0;
  while (true) {
    const size_t n = std::min(piece, input.size() - fed);
    buffered.append(input.substr(fed, n));
    fed += n;
    while (true) {
      BodyResult r = d.feed(bytes(buffered));
      out.body.append(text(r.data));
      buffered.erase(0, r.consumed);
      pos += r.consumed;
      if (r.status != Status::NeedMore) {
        out.status = r.status;
        out.reason = std::string(r.reason);
        out.consumed = pos;
        return out;
      }
      if (buffered.empty()) {
        break;
      }
    }
    if (fed == input.size()) {
      out.status = Status::NeedMore;
      out.consumed = pos;
      return out;
    }
  }
}

}  // namespace testutil
}  // namespace tollgate::mitm
