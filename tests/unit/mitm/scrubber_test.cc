// The response scrubber: leftmost-longest replacement of real values by
// their placeholders, streamed across feed boundaries.
#include "mitm/scrubber.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "http_util.h"

namespace tollgate::mitm {
namespace {

// Feeds `input` cut at `cuts`, checking the held-back tail stays below the
// longest secret; returns everything emitted.
std::string stream(const std::vector<ScrubPair>& pairs, std::string_view input,
                   const std::vector<size_t>& cuts) {
  Scrubber s(pairs);
  std::string out;
  size_t from = 0;
  std::vector<size_t> points = cuts;
  points.push_back(input.size());
  for (size_t to : points) {
    s.feed(input.substr(from, to - from), out);
    EXPECT_LT(s.pending(), std::max<size_t>(s.maxSecretLength(), 1));
    from = to;
  }
  s.finish(out);
  EXPECT_EQ(s.pending(), 0u);
  return out;
}

// Naive reference on the whole input (the contract of Scrubber::scrub).
std::string reference(const std::vector<ScrubPair>& pairs, std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const ScrubPair* best = nullptr;
    for (const ScrubPair& p : pairs) {
      if (!p.secret.empty() && in.substr(i, p.secret.size()) == p.secret &&
          (best == nullptr || p.secret.size() > best->secret.size())) {
        best = &p;
      }
    }
    if (best != nullptr) {
      out += best->placeholder;
      i += best->secret.size();
    } else {
      out += in[i++];
    }
  }
  return out;
}

const std::vector<ScrubPair> kOne = {{"sk-REAL-secret-value", "tgph_placeholder_xxxxxxxxxxxx"}};

TEST(ScrubberTest, ReplacesInOneFeed) {
  EXPECT_EQ(stream(kOne, "{\"auth\":\"Bearer sk-REAL-secret-value\"}", {}),
            "{\"auth\":\"Bearer tgph_placeholder_xxxxxxxxxxxx\"}");
}

TEST(ScrubberTest, ValueSplitAtEveryOffsetAcrossTwoAndThreeFeeds) {
  const std::string input = "echo: sk-REAL-secret-value; again sk-REAL-secret-value!";
  const std::string want = reference(kOne, input);
  ASSERT_EQ(want, "echo: tgph_placeholder_xxxxxxxxxxxx; again tgph_placeholder_xxxxxxxxxxxx!");
  for (size_t a = 0; a <= input.size(); ++a) {
    ASSERT_EQ(stream(kOne, input, {a}), want) << a;
    for (size_t b = a; b <= input.size(); b += 3) {
      ASSERT_EQ(stream(kOne, input, {a, b}), want) << a << "," << b;
    }
  }
  EXPECT_EQ(stream(kOne, input, testutil::everyByte(input.size())), want);
}

TEST(ScrubberTest, CountsReplacements) {
  Scrubber s(kOne);
  std::string out;
  s.feed(std::string_view("sk-REAL-secret-value sk-REAL-se"), out);
  EXPECT_EQ(s.replacements(), 1u);
  s.feed(std::string_view("cret-value"), out);
  s.finish(out);
  EXPECT_EQ(s.replacements(), 2u);
}

TEST(ScrubberTest, ValueAtTheVeryEndAndPrefixAtTheEnd) {
  EXPECT_EQ(stream(kOne, "tail sk-REAL-secret-value", {5, 10}),
            "tail tgph_placeholder_xxxxxxxxxxxx");
  // A prefix of a value at the end of the body is not the value: flushed as is.
  EXPECT_EQ(stream(kOne, "tail sk-REAL-secret-valu", {7}), "tail sk-REAL-secret-valu");
}

TEST(ScrubberTest, EmitsAsEarlyAsPossible) {
  Scrubber s(kOne);
  std::string out;
  s.feed(std::string_view("hello world"), out);
  EXPECT_EQ(out, "hello world");  // no 's' at the end: nothing to hold
  s.feed(std::string_view("xx sk-RE"), out);
  EXPECT_EQ(out, "hello worldxx ");
  EXPECT_EQ(s.pending(), 5u);
  s.feed(std::string_view("D"), out);  // "sk-RED" can no longer match
  EXPECT_EQ(out, "hello worldxx sk-RED");
  EXPECT_EQ(s.pending(), 0u);
}

TEST(ScrubberTest, OverlappingValuesLeftmostLongest) {
  const std::vector<ScrubPair> pairs = {
      {"abcd", "[1]"}, {"bcde", "[2]"}, {"abcdef", "[3]"}, {"cd", "[4]"}, {"xyz", "[5]"}};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abcdefg", "[3]g"},    // longest at the leftmost position
      {"abcdeg", "[1]eg"},    // "abcdef" fails late: fall back to "abcd"
      {"zbcdez", "z[2]z"},    // leftmost is b
      {"abcabcd", "abc[1]"},  // a false start, then a match
      {"ccdd", "c[4]d"},      // short value
      {"xyxyz", "xy[5]"},     // self-overlap of the prefix
      {"abcdabcdef", "[1][3]"}};
  for (const auto& [in, want] : cases) {
    ASSERT_EQ(reference(pairs, in), want) << in;
    for (size_t a = 0; a <= in.size(); ++a) {
      for (size_t b = a; b <= in.size(); ++b) {
        ASSERT_EQ(stream(pairs, in, {a, b}), want) << in << " " << a << "," << b;
      }
    }
  }
}

TEST(ScrubberTest, TieGoesToTheFirstPair) {
  const std::vector<ScrubPair> pairs = {{"same", "[first]"}, {"same", "[second]"}};
  EXPECT_EQ(stream(pairs, "a same b", {3}), "a [first] b");
}

TEST(ScrubberTest, RandomStreamsMatchTheReference) {
  std::mt19937 rng(1234);
  const std::vector<ScrubPair> pairs = {
      {"aab", "P1"}, {"abab", "Q22"}, {"b", "R"}, {"aaaa", "SSSSSS"}, {"ba", "T"}};
  for (int round = 0; round < 2000; ++round) {
    std::string in(rng() % 40, 'a');
    for (char& c : in) {
      c = "abc"[rng() % 3];
    }
    std::vector<size_t> cuts;
    for (size_t p = 0; p < in.size(); p += 1 + rng() % 5) {
      cuts.push_back(p);
    }
    ASSERT_EQ(stream(pairs, in, cuts), reference(pairs, in)) << in;
  }
}

TEST(ScrubberTest, HeadFields) {
  const std::vector<ScrubPair> pairs = {{"sk-REAL", "tgph_X"}};
  Scrubber s(pairs);
  ResponseHead head;
  head.status = 401;
  head.reason = "bad key sk-REAL";
  head.headers.add("X-Echo-Authorization", "Bearer sk-REAL");
  head.headers.add("sk-REAL", "name echoed");
  head.headers.add("Location", "https://x/?k=sk-REAL&sk-REAL");
  s.scrubHead(head);
  EXPECT_EQ(head.reason, "bad key tgph_X");
  EXPECT_EQ(head.headers.fields[0].value, "Bearer tgph_X");
  EXPECT_EQ(head.headers.fields[1].name, "tgph_X");
  EXPECT_EQ(head.headers.fields[2].value, "https://x/?k=tgph_X&tgph_X");
  EXPECT_EQ(serialize(head).find("sk-REAL"), std::string::npos);
}

TEST(ScrubberTest, LengthPreservingAndActive) {
  EXPECT_FALSE(Scrubber().active());
  EXPECT_TRUE(Scrubber().lengthPreserving());
  EXPECT_TRUE(Scrubber(std::vector<ScrubPair>{{"abc", "xyz"}}).lengthPreserving());
  EXPECT_FALSE(Scrubber(std::vector<ScrubPair>{{"abc", "xyz"}, {"ab", "xyz"}}).lengthPreserving());
  EXPECT_FALSE(Scrubber(std::vector<ScrubPair>{{"", "x"}}).active());  // empty secrets are dropped
}

TEST(ScrubberTest, NoPairsPassesThrough) {
  Scrubber s;
  std::string out;
  s.feed(std::string_view("anything"), out);
  s.finish(out);
  EXPECT_EQ(out, "anything");
}

TEST(ScrubberTest, MovedScrubberKeepsItsTail) {
  Scrubber a(kOne);
  std::string out;
  a.feed(std::string_view("x sk-REAL-se"), out);
  Scrubber b = std::move(a);
  b.feed(std::string_view("cret-value y"), out);
  b.finish(out);
  EXPECT_EQ(out, "x tgph_placeholder_xxxxxxxxxxxx y");
}

TEST(ScrubbableTest, ContentEncoding) {
  ResponseHead h;
  EXPECT_TRUE(scrubbable(h));
  h.headers.add("Content-Encoding", "identity");
  EXPECT_TRUE(scrubbable(h));
  h.headers.add("content-encoding", "gzip");
  EXPECT_FALSE(scrubbable(h));
  ResponseHead br;
  br.headers.add("Content-Encoding", "identity, br");
  EXPECT_FALSE(scrubbable(br));
}

}  // namespace
}  // namespace tollgate::mitm

// ---------------------------------------------------------------------------
// Encoded forms (addScrubForms): what an echoing upstream makes of a secret.

namespace tollgate::mitm {
namespace {

// Holds the forms of one secret and scrubs with them.
struct Forms {
  explicit Forms(std::string_view secret, std::string_view placeholder) {
    EXPECT_TRUE(addScrubForms(secret, placeholder, derived, pairs).ok());
  }
  std::vector<SecretBuffer> derived;
  std::vector<ScrubPair> pairs;
};

// A secret with every character class the encoders treat specially.
constexpr std::string_view kOdd = "k/e\"y\\<&>+\xc3\xa9\xf0\x9f\x98\x80-Z0123456789";
constexpr std::string_view kOddPh = "tgph_odd_aaaaaaaaaaaaaaaaaaaaaaaa";

// The echo, scrubbed in one go and streamed cut at every position, must be
// `prefix + placeholder + suffix`.
void expectScrubbed(const Forms& f, std::string_view prefix, std::string_view form,
                    std::string_view suffix) {
  const std::string echo = std::string(prefix) + std::string(form) + std::string(suffix);
  const std::string want = std::string(prefix) + std::string(kOddPh) + std::string(suffix);
  EXPECT_EQ(Scrubber(f.pairs).scrub(echo), want) << form;
  for (size_t cut = 1; cut < echo.size(); ++cut) {
    ASSERT_EQ(stream(f.pairs, echo, {cut}), want) << form << " cut at " << cut;
  }
}

TEST(ScrubFormsTest, PercentEncodedInEitherCaseAndFormEncoded) {
  Forms f(kOdd, kOddPh);
  expectScrubbed(f, "?q=", "k%2Fe%22y%5C%3C%26%3E%2B%C3%A9%F0%9F%98%80-Z0123456789", "&x");
  expectScrubbed(f, "?q=", "k%2fe%22y%5c%3c%26%3e%2b%c3%a9%f0%9f%98%80-Z0123456789", "&x");
  Forms spaced("a b/c-0123456789", kOddPh);
  EXPECT_EQ(Scrubber(spaced.pairs).scrub("x=a+b%2Fc-0123456789;"),
            "x=" + std::string(kOddPh) + ";");
  EXPECT_EQ(Scrubber(spaced.pairs).scrub("x=a%20b%2fc-0123456789;"),
            "x=" + std::string(kOddPh) + ";");
}

TEST(ScrubFormsTest, JsonEscapedInTheStylesOfCommonEncoders) {
  Forms f(kOdd, kOddPh);
  // Python json.dumps (ensure_ascii): \" \\ and \u for non-ASCII.
  expectScrubbed(f, "{\"a\":\"", "k/e\\\"y\\\\<&>+\\u00e9\\ud83d\\ude00-Z0123456789", "\"}");
  // JSON.stringify / serde: only \" and \\.
  expectScrubbed(f, "{\"a\":\"", "k/e\\\"y\\\\<&>+\xc3\xa9\xf0\x9f\x98\x80-Z0123456789", "\"}");
  // PHP json_encode: \/ too.
  expectScrubbed(f, "{\"a\":\"", "k\\/e\\\"y\\\\<&>+\\u00e9\\ud83d\\ude00-Z0123456789", "\"}");
  // Go encoding/json: < > & as \u003c \u0026 \u003e, non-ASCII raw.
  expectScrubbed(f, "{\"a\":\"",
                 "k/e\\\"y\\\\\\u003c\\u0026\\u003e+\xc3\xa9\xf0\x9f\x98\x80-Z0123456789", "\"}");
  // Everything as \u escapes, upper-case hex (.NET style).
  expectScrubbed(f, "{\"a\":\"",
                 "k\\u002Fe\\u0022y\\u005C\\u003C\\u0026\\u003E\\u002B\\u00E9\\uD83D\\uDE00-"
                 "Z0123456789",
                 "\"}");
}

// base64 of prefix + secret + "Z": the characters whose bits all come from
// the secret are replaced, whatever the alignment.
TEST(ScrubFormsTest, Base64AtEveryAlignmentInBothAlphabets) {
  Forms f(kOdd, kOddPh);
  // Python: base64.b64encode(b"A" * k + secret + b"Z") (and urlsafe_).
  const std::vector<std::tuple<size_t, std::string, std::string>> cases = {
      {0, "ay9lInlcPCY+K8Op8J+YgC1aMDEyMzQ1Njc4OVo=", "ay9lInlcPCY-K8Op8J-YgC1aMDEyMzQ1Njc4OVo="},
      {1, "QWsvZSJ5XDwmPivDqfCfmIAtWjAxMjM0NTY3ODla", "QWsvZSJ5XDwmPivDqfCfmIAtWjAxMjM0NTY3ODla"},
      {2, "QUFrL2UieVw8Jj4rw6nwn5iALVowMTIzNDU2Nzg5Wg==",
       "QUFrL2UieVw8Jj4rw6nwn5iALVowMTIzNDU2Nzg5Wg=="},
  };
  for (const auto& [k, standard, url] : cases) {
    const size_t from = (8 * k + 5) / 6;            // first char of the secret's bits only
    const size_t to = (8 * (k + kOdd.size())) / 6;  // one past the last
    for (const std::string& e : {standard, url}) {
      expectScrubbed(f, e.substr(0, from), e.substr(from, to - from), e.substr(to));
    }
  }
}

TEST(ScrubFormsTest, PlainSecretsAddOnlyDistinctForms) {
  // Unreserved characters only: every text form is the raw value; the
  // base64 forms remain.
  Forms f("sk-REAL-openai-0123456789", kOddPh);
  EXPECT_EQ(f.pairs[0].secret, "sk-REAL-openai-0123456789");
  EXPECT_GE(f.pairs.size(), 1u + 3u);  // 3 alignments; the alphabets may agree
  EXPECT_LE(f.pairs.size(), 1u + 6u);
  for (size_t i = 0; i < f.pairs.size(); ++i) {
    for (size_t j = i + 1; j < f.pairs.size(); ++j) {
      EXPECT_NE(f.pairs[i].secret, f.pairs[j].secret);
    }
  }
  // Too short for base64 forms that could not match by chance.
  Forms tiny("abc", kOddPh);
  EXPECT_EQ(tiny.pairs.size(), 1u);
}

}  // namespace
}  // namespace tollgate::mitm
