// Placeholder redaction: raw, any case, percent- and DNS-escaped.
#include "gateway/redact.h"

#include <gtest/gtest.h>

#include "gateway/audit.h"

namespace tollgate::gateway {
namespace {

const PlaceholderList kList = {
    {"openai", "tgph_OpenAiKey.Value~0123456789"},
    {"github", "tgph-GitHub-abcdefghijklmnopqrstuv"},
};

struct Case {
  const char* in;
  const char* out;
};

TEST(RedactTest, EveryFormOfAPlaceholderIsRedacted) {
  const Case cases[] = {
      {"", ""},
      {"nothing here /v1/models", "nothing here /v1/models"},
      // raw, at the start, the end, twice, next to each other
      {"tgph_OpenAiKey.Value~0123456789", "<placeholder:openai>"},
      {"/v1/tgph_OpenAiKey.Value~0123456789/x", "/v1/<placeholder:openai>/x"},
      {"a tgph_OpenAiKey.Value~0123456789tgph-GitHub-abcdefghijklmnopqrstuv",
       "a <placeholder:openai><placeholder:github>"},
      // lower-cased (a DNS name), upper-cased
      {"tgph_openaikey.value~0123456789.example", "<placeholder:openai>.example"},
      {"TGPH-GITHUB-ABCDEFGHIJKLMNOPQRSTUV", "<placeholder:github>"},
      // percent-encoded: one character, every character, either hex case
      {"/p/tgph%5FOpenAiKey.Value%7e0123456789?", "/p/<placeholder:openai>?"},
      {"/%74%67%70%68%2D%47%69%74%48%75%62%2d%61%62%63%64%65%66%67%68%69%6A%6b%6c%6d%6e%6f%70%71%"
       "72%73%74%75%76",
       "/<placeholder:github>"},
      // DNS presentation escapes (a '~' is not LDH; a '.' inside a label)
      {"tgph_openaikey\\046value\\1260123456789.example", "<placeholder:openai>.example"},
      // one character short, one wrong: left alone
      {"tgph_OpenAiKey.Value~012345678", "tgph_OpenAiKey.Value~012345678"},
      {"tgph_OpenAiKey.Value~0123456780", "tgph_OpenAiKey.Value~0123456780"},
      // broken escapes are text, not a match
      {"tgph%5_OpenAiKey.Value~0123456789", "tgph%5_OpenAiKey.Value~0123456789"},
      {"tgph_OpenAiKey.Value~012345678%3", "tgph_OpenAiKey.Value~012345678%3"},
      {"tgph_OpenAiKey.Value\\99", "tgph_OpenAiKey.Value\\99"},
      // a prefix then the real thing
      {"tgph_tgph_OpenAiKey.Value~0123456789", "tgph_<placeholder:openai>"},
      // bytes that are not UTF-8 pass through
      {"\xff\xfe tgph-github-abcdefghijklmnopqrstuv \x80", "\xff\xfe <placeholder:github> \x80"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(redactPlaceholders(c.in, kList), c.out) << c.in;
  }
}

TEST(RedactTest, AnEmptyListOrPlaceholderChangesNothing) {
  EXPECT_EQ(redactPlaceholders("tgph_OpenAiKey.Value~0123456789", {}),
            "tgph_OpenAiKey.Value~0123456789");
  const PlaceholderList empty = {{"x", ""}};
  EXPECT_EQ(redactPlaceholders("abc", empty), "abc");
}

TEST(RedactTest, TheRedactorUsesTheListInForce) {
  PlaceholderRedactor r;
  EXPECT_EQ(r("tgph-GitHub-abcdefghijklmnopqrstuv"), "tgph-GitHub-abcdefghijklmnopqrstuv");
  r.set(std::make_shared<const PlaceholderList>(kList));
  EXPECT_EQ(r("tgph-GitHub-abcdefghijklmnopqrstuv"), "<placeholder:github>");
  r.set(std::make_shared<const PlaceholderList>(
      PlaceholderList{{"other", "zzzzzzzzzzzzzzzzzzzzzzzz"}}));
  EXPECT_EQ(r("zzzzzzzzzzzzzzzzzzzzzzzz"), "<placeholder:other>");
}

TEST(RedactTest, EveryStringFieldOfAnAuditRecordIsRedacted) {
  const std::string p = "tgph-GitHub-abcdefghijklmnopqrstuv";
  FlowRecord r;
  r.event = r.sandbox = r.src = r.dst = r.proto = r.sni = r.host = r.action = r.reason = r.rule =
      r.upstream = r.tls_version = r.http_method = r.http_path = "x" + p;
  r.tls_alpn = {p};
  r.credentials = {p};
  r.has_tls = r.has_http = true;
  std::string line = formatRecord(redactRecord(r, kList));
  EXPECT_EQ(line.find("abcdefghijklmnopqrstuv"), std::string::npos) << line;
  size_t n = 0;
  for (size_t at = line.find("<placeholder:github>"); at != std::string::npos;
       at = line.find("<placeholder:github>", at + 1)) {
    ++n;
  }
  EXPECT_EQ(n, 16u) << line;
}

}  // namespace
}  // namespace tollgate::gateway
