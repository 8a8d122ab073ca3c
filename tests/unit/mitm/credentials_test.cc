// The credential rewriter (DESIGN.md "Credential semantics"), table-tested:
// where placeholders may be swapped, where they refuse the request, and what
// the sandbox-facing scrubber is told.
#include "mitm/credentials.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http_util.h"

namespace tollgate::mitm {
namespace {

using testutil::feedRequestHead;

constexpr std::string_view kOpenAiValue = "sk-REAL-openai-0123456789";
constexpr std::string_view kOpenAiPh = "tgph_openai_000000000000000000000000";
constexpr std::string_view kGithubValue = "ghp/REAL+github=&x y";
constexpr std::string_view kGithubEncoded = "ghp%2FREAL%2Bgithub%3D%26x%20y";
constexpr std::string_view kGithubPh = "tgph_github_111111111111111111111111";
constexpr std::string_view kExampleValue = "ex-REAL-key";
constexpr std::string_view kExamplePh = "tgph_example_22222222222222222222222";
constexpr std::string_view kNoValuePh = "tgph_novalue_3333333333333333333333";

const SecretBuffer& secret(std::string_view value) {
  static std::map<std::string, SecretBuffer, std::less<>> store;
  auto it = store.find(value);
  if (it == store.end()) {
    auto buf = SecretBuffer::copyOf(value);
    EXPECT_TRUE(buf.ok());
    it = store.emplace(std::string(value), std::move(*buf)).first;
  }
  return it->second;
}

HostMatcher exact(std::string name) {
  return [name](std::string_view host) { return host == name; };
}
HostMatcher below(std::string suffix) {  // "*.example.com"
  return [suffix](std::string_view host) {
    return host.size() > suffix.size() && host.ends_with(suffix) &&
           host[host.size() - suffix.size() - 1] == '.';
  };
}

std::vector<CredentialSpec> table() {
  std::vector<CredentialSpec> t(4);
  t[0].name = "openai";
  t[0].placeholder = kOpenAiPh;
  t[0].scope = {exact("api.openai.com"), exact("gateway.example.com")};
  t[0].inject_header = "Authorization";
  t[0].format = "Bearer {value}";
  t[0].value = &secret(kOpenAiValue);
  t[1].name = "github";
  t[1].placeholder = kGithubPh;
  t[1].scope = {exact("api.github.com")};
  t[1].inject_query = "access_token";
  t[1].value = &secret(kGithubValue);
  t[2].name = "example";
  t[2].placeholder = kExamplePh;
  t[2].scope = {below("example.com")};
  t[2].inject_header = "X-Api-Key";
  t[2].value = &secret(kExampleValue);
  t[3].name = "novalue";
  t[3].placeholder = kNoValuePh;
  t[3].scope = {exact("api.novalue.test")};
  t[3].inject_header = "Authorization";
  t[3].value = nullptr;
  return t;
}

// Substitutes {OPENAI}, {GITHUB}, {EXAMPLE}, {NOVALUE} (placeholders),
// {OPENAI_VALUE}, {GITHUB_ENC}, {EXAMPLE_VALUE} (real values) in a template.
std::string fill(std::string s) {
  const std::pair<std::string_view, std::string_view> subs[] = {{"{OPENAI_VALUE}", kOpenAiValue},
                                                                {"{GITHUB_ENC}", kGithubEncoded},
                                                                {"{EXAMPLE_VALUE}", kExampleValue},
                                                                {"{OPENAI}", kOpenAiPh},
                                                                {"{GITHUB}", kGithubPh},
                                                                {"{EXAMPLE}", kExamplePh},
                                                                {"{NOVALUE}", kNoValuePh}};
  for (auto [from, to] : subs) {
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
      s.replace(pos, from.size(), to);
    }
  }
  return s;
}

struct Case {
  std::string label;
  std::string request;  // template (fill())
  std::string host;
  bool verified = true;
  std::optional<std::vector<std::string>> attached;
  // Injected: the re-serialised head (template) and names; Refused: credential + detail.
  std::string want_head;  // "" for Refused, "same" when unchanged
  std::vector<std::string> want_injected;
  std::string refused_credential = {};
  std::string refused_detail = {};
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

class RewriteTest : public ::testing::TestWithParam<Case> {};

TEST_P(RewriteTest, Table) {
  const Case& c = GetParam();
  const std::string raw = fill(c.request);
  RequestHead head;
  ASSERT_EQ(feedRequestHead(raw, 0, &head).status, Status::Done) << raw;
  const RequestHead before = head;
  const std::vector<CredentialSpec> specs = table();
  RewriteContext ctx{c.host, c.verified, c.attached ? &*c.attached : nullptr};
  RewriteOutcome out = rewriteCredentials(head, ctx, specs);
  if (!c.refused_credential.empty()) {
    ASSERT_TRUE(std::holds_alternative<Refused>(out)) << serialize(head);
    const Refused& r = std::get<Refused>(out);
    EXPECT_EQ(r.reason, "credential_scope_violation");
    EXPECT_EQ(r.credential, c.refused_credential);
    EXPECT_EQ(r.detail, c.refused_detail);
    EXPECT_EQ(head, before) << "a refused head is left untouched";
    for (std::string_view v : {kOpenAiValue, kGithubValue, kGithubEncoded, kExampleValue}) {
      EXPECT_EQ(r.detail.find(v), std::string::npos);
    }
    EXPECT_EQ(r.detail.find("tgph_"), std::string::npos) << "no placeholder in the detail";
    return;
  }
  ASSERT_TRUE(std::holds_alternative<Injected>(out)) << std::get<Refused>(out).detail;
  const Injected& inj = std::get<Injected>(out);
  EXPECT_EQ(inj.credentials, c.want_injected);
  EXPECT_EQ(inj.identity_encoding, !c.want_injected.empty());
  if (c.want_head == "same") {
    EXPECT_EQ(serialize(head), raw);
  } else {
    EXPECT_EQ(serialize(head), fill(c.want_head));
  }
  // Whatever went in, the scrubber is told about it.
  for (const std::string& name : c.want_injected) {
    for (const CredentialSpec& s : specs) {
      if (s.name != name) {
        continue;
      }
      bool found = false;
      for (const ScrubPair& p : inj.scrub) {
        found = found || (p.secret == s.value->view() && p.placeholder == s.placeholder);
      }
      EXPECT_TRUE(found) << name;
    }
  }
}

const std::vector<std::string> kNone;
const std::vector<std::string> kOpenAi{"openai"};
const std::vector<std::string> kGithub{"github"};

INSTANTIATE_TEST_SUITE_P(
    Inject, RewriteTest,
    ::testing::Values(
        Case{"header_placeholder_replaced",
             "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer "
             "{OPENAI}\r\n\r\n",
             "api.openai.com", true, std::nullopt,
             "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer "
             "{OPENAI_VALUE}\r\nAccept-Encoding: identity\r\n\r\n",
             kOpenAi},
        Case{"header_absent_set_from_format",
             "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nAccept: */*\r\n\r\n",
             "api.openai.com", true, std::nullopt,
             "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nAccept: */*\r\nAuthorization: "
             "Bearer {OPENAI_VALUE}\r\nAccept-Encoding: identity\r\n\r\n",
             kOpenAi},
        Case{"header_present_without_placeholder_untouched",
             "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-own\r\n\r\n",
             "api.openai.com", true, std::nullopt, "same", kNone},
        Case{"multiple_occurrences",
             "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: {OPENAI},{OPENAI}\r\n\r\n",
             "api.openai.com", true, std::nullopt,
             "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: "
             "{OPENAI_VALUE},{OPENAI_VALUE}\r\nAccept-Encoding: identity\r\n\r\n",
             kOpenAi},
        Case{"multiple_header_lines_and_name_case",
             "GET / HTTP/1.1\r\nHost: api.openai.com\r\nauthorization: Bearer "
             "{OPENAI}\r\nAUTHORIZATION: x{OPENAI}y\r\n\r\n",
             "api.openai.com", true, std::nullopt,
             "GET / HTTP/1.1\r\nHost: api.openai.com\r\nauthorization: Bearer "
             "{OPENAI_VALUE}\r\nAUTHORIZATION: x{OPENAI_VALUE}y\r\nAccept-Encoding: "
             "identity\r\n\r\n",
             kOpenAi},
        Case{
            "accept_encoding_replaced_in_place",
            "GET / HTTP/1.1\r\nAccept-Encoding: gzip, br\r\nHost: "
            "api.openai.com\r\naccept-encoding: "
            "zstd\r\n\r\n",
            "api.openai.com", true, std::nullopt,
            "GET / HTTP/1.1\r\nAccept-Encoding: identity\r\nHost: api.openai.com\r\nAuthorization: "
            "Bearer {OPENAI_VALUE}\r\n\r\n",
            kOpenAi},
        Case{"query_placeholder_replaced_encoded",
             "GET /user?access_token={GITHUB}&x=1 HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
             "api.github.com", true, std::nullopt,
             "GET /user?access_token={GITHUB_ENC}&x=1 HTTP/1.1\r\nHost: "
             "api.github.com\r\nAccept-Encoding: identity\r\n\r\n",
             kGithub},
        Case{"query_appended_when_absent", "GET /user?x=1 HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
             "api.github.com", true, std::nullopt,
             "GET /user?x=1&access_token={GITHUB_ENC} HTTP/1.1\r\nHost: "
             "api.github.com\r\nAccept-Encoding: identity\r\n\r\n",
             kGithub},
        Case{"query_appended_without_query", "GET /user HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
             "api.github.com", true, std::nullopt,
             "GET /user?access_token={GITHUB_ENC} HTTP/1.1\r\nHost: "
             "api.github.com\r\nAccept-Encoding: identity\r\n\r\n",
             kGithub},
        Case{"query_appended_after_bare_question_mark",
             "GET /user? HTTP/1.1\r\nHost: api.github.com\r\n\r\n", "api.github.com", true,
             std::nullopt,
             "GET /user?access_token={GITHUB_ENC} HTTP/1.1\r\nHost: "
             "api.github.com\r\nAccept-Encoding: identity\r\n\r\n",
             kGithub},
        Case{"query_absolute_form",
             "GET https://api.github.com/user?a=b&access_token={GITHUB} HTTP/1.1\r\nHost: "
             "api.github.com\r\n\r\n",
             "api.github.com", true, std::nullopt,
             "GET https://api.github.com/user?a=b&access_token={GITHUB_ENC} HTTP/1.1\r\nHost: "
             "api.github.com\r\nAccept-Encoding: identity\r\n\r\n",
             kGithub},
        Case{"query_param_without_placeholder_untouched",
             "GET /user?access_token=mine HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
             "api.github.com", true, std::nullopt, "same", kNone},
        Case{"query_asterisk_form_gets_nothing",
             "OPTIONS * HTTP/1.1\r\nHost: api.github.com\r\n\r\n", "api.github.com", true,
             std::nullopt, "same", kNone},
        Case{"two_credentials",
             "GET / HTTP/1.1\r\nHost: gateway.example.com\r\nX-Api-Key: {EXAMPLE}\r\n\r\n",
             "gateway.example.com", true, std::nullopt,
             "GET / HTTP/1.1\r\nHost: gateway.example.com\r\nX-Api-Key: "
             "{EXAMPLE_VALUE}\r\nAuthorization: Bearer {OPENAI_VALUE}\r\nAccept-Encoding: "
             "identity\r\n\r\n",
             std::vector<std::string>{"openai", "example"}},
        Case{"attached_limits_injection", "GET / HTTP/1.1\r\nHost: gateway.example.com\r\n\r\n",
             "gateway.example.com", true, std::vector<std::string>{"example"},
             "GET / HTTP/1.1\r\nHost: gateway.example.com\r\nX-Api-Key: "
             "{EXAMPLE_VALUE}\r\nAccept-Encoding: identity\r\n\r\n",
             std::vector<std::string>{"example"}},
        Case{"no_placeholder_other_host_untouched",
             "POST /x HTTP/1.1\r\nHost: unrelated.test\r\nContent-Length: 0\r\n\r\n",
             "unrelated.test", true, std::nullopt, "same", kNone},
        Case{"cleartext_without_placeholder_gets_nothing",
             "GET / HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", "api.openai.com", false,
             std::nullopt, "same", kNone},
        Case{"host_mismatch_without_placeholder_gets_nothing",
             "GET / HTTP/1.1\r\nHost: other.openai.com\r\n\r\n", "api.openai.com", true,
             std::nullopt, "same", kNone},
        Case{"http10_without_host_uses_connection_host",
             "GET / HTTP/1.0\r\nAuthorization: Bearer {OPENAI}\r\n\r\n", "api.openai.com", true,
             std::nullopt,
             "GET / HTTP/1.0\r\nAuthorization: Bearer {OPENAI_VALUE}\r\nAccept-Encoding: "
             "identity\r\n\r\n",
             kOpenAi}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.label; });

Case refuse(std::string label, std::string request, std::string host, std::string credential,
            std::string detail, bool verified = true,
            std::optional<std::vector<std::string>> attached = std::nullopt) {
  Case c;
  c.label = std::move(label);
  c.request = std::move(request);
  c.host = std::move(host);
  c.verified = verified;
  c.attached = std::move(attached);
  c.refused_credential = std::move(credential);
  c.refused_detail = std::move(detail);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Refuse, RewriteTest,
    ::testing::Values(
        refuse("placeholder_in_path", "GET /{OPENAI} HTTP/1.1\r\nHost: api.openai.com\r\n\r\n",
               "api.openai.com", "openai", "wrong_place: target"),
        refuse("placeholder_percent_encoded_in_path",
               "GET /tgph%5Fopenai_000000000000000000000000 HTTP/1.1\r\nHost: "
               "api.openai.com\r\n\r\n",
               "api.openai.com", "openai", "wrong_place: target (percent-encoded)"),
        refuse("placeholder_in_other_header",
               "GET / HTTP/1.1\r\nHost: api.openai.com\r\nX-Echo: {OPENAI}\r\n\r\n",
               "api.openai.com", "openai", "wrong_place: header X-Echo"),
        refuse("placeholder_in_header_name",
               "GET / HTTP/1.1\r\nHost: api.openai.com\r\n{OPENAI}: 1\r\n\r\n", "api.openai.com",
               "openai", "wrong_place: header name"),
        refuse("out_of_scope_host",
               "GET / HTTP/1.1\r\nHost: evil.example.net\r\nAuthorization: Bearer {OPENAI}\r\n\r\n",
               "evil.example.net", "openai", "out_of_scope: header Authorization"),
        refuse("out_of_scope_in_query", "GET /?q={OPENAI} HTTP/1.1\r\nHost: evil.test\r\n\r\n",
               "evil.test", "openai", "out_of_scope: target"),
        refuse("cleartext_upstream",
               "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {OPENAI}\r\n\r\n",
               "api.openai.com", "openai", "cleartext_upstream: header Authorization", false),
        refuse("other_credentials_placeholder",
               "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {GITHUB}\r\n\r\n",
               "api.openai.com", "github", "out_of_scope: header Authorization"),
        refuse("header_credential_in_query",
               "GET /?key={OPENAI} HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", "api.openai.com",
               "openai", "wrong_place: target"),
        refuse("query_credential_in_other_param",
               "GET /?access_token=x&other={GITHUB} HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
               "api.github.com", "github", "wrong_place: target"),
        refuse("query_credential_in_param_name",
               "GET /?{GITHUB}=1 HTTP/1.1\r\nHost: api.github.com\r\n\r\n", "api.github.com",
               "github", "wrong_place: target"),
        refuse("query_credential_encoded_in_allowed_param",
               "GET /?access_token=tgph%5fgithub_111111111111111111111111 HTTP/1.1\r\nHost: "
               "api.github.com\r\n\r\n",
               "api.github.com", "github", "wrong_place: target (percent-encoded)"),
        refuse("query_credential_in_path_too",
               "GET /{GITHUB}?access_token={GITHUB} HTTP/1.1\r\nHost: api.github.com\r\n\r\n",
               "api.github.com", "github", "wrong_place: target"),
        refuse("query_credential_in_header",
               "GET /?access_token={GITHUB} HTTP/1.1\r\nHost: api.github.com\r\nX-T: "
               "{GITHUB}\r\n\r\n",
               "api.github.com", "github", "wrong_place: header X-T"),
        refuse("host_mismatch",
               "GET / HTTP/1.1\r\nHost: other.openai.com\r\nAuthorization: Bearer {OPENAI}\r\n\r\n",
               "api.openai.com", "openai", "host_mismatch: header Authorization"),
        refuse("referer_holds_placeholder",
               "GET / HTTP/1.1\r\nHost: api.openai.com\r\nReferer: https://x/{OPENAI}\r\n\r\n",
               "api.openai.com", "openai", "wrong_place: header Referer"),
        refuse("not_attached",
               "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {OPENAI}\r\n\r\n",
               "api.openai.com", "openai", "not_attached: header Authorization", true,
               std::vector<std::string>{"github"}),
        refuse("no_value",
               "GET / HTTP/1.1\r\nHost: api.novalue.test\r\nAuthorization: {NOVALUE}\r\n\r\n",
               "api.novalue.test", "novalue", "no_value: header Authorization"),
        refuse("second_placeholder_out_of_place_refuses_all",
               "GET / HTTP/1.1\r\nHost: gateway.example.com\r\nAuthorization: Bearer "
               "{OPENAI}\r\nCookie: k={EXAMPLE}\r\n\r\n",
               "gateway.example.com", "example", "wrong_place: header Cookie")),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.label; });

TEST(RewriteScrubPairsTest, QueryInjectionAddsTheEncodedForm) {
  RequestHead head;
  ASSERT_EQ(
      feedRequestHead(fill("GET /?access_token={GITHUB} HTTP/1.1\r\nHost: api.github.com\r\n\r\n"),
                      0, &head)
          .status,
      Status::Done);
  const auto specs = table();
  RewriteOutcome out = rewriteCredentials(head, {"api.github.com", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Injected>(out));
  Injected inj = std::move(std::get<Injected>(out));
  ASSERT_GE(inj.derived.size(), 1u);
  EXPECT_EQ(inj.derived[0].view(), kGithubEncoded);  // what went into the query
  ASSERT_GE(inj.scrub.size(), 2u);
  EXPECT_EQ(inj.scrub[0].secret, kGithubValue);
  EXPECT_EQ(inj.scrub[1].secret, kGithubEncoded);
  // The views survive moving the outcome (the SecretBuffer memory does not move).
  Injected moved = std::move(inj);
  EXPECT_EQ(moved.scrub[1].secret, kGithubEncoded);
  Scrubber scrubber(moved.scrub);
  EXPECT_EQ(scrubber.scrub(std::string("echo ") + std::string(kGithubEncoded) + " and " +
                           std::string(kGithubValue)),
            "echo " + std::string(kGithubPh) + " and " + std::string(kGithubPh));
}

TEST(RewriteScrubPairsTest, HeaderInjectionAddsEveryEncodedForm) {
  RequestHead head;
  ASSERT_EQ(feedRequestHead(fill("GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: "
                                 "Bearer {OPENAI}\r\n\r\n"),
                            0, &head)
                .status,
            Status::Done);
  const auto specs = table();
  RewriteOutcome out = rewriteCredentials(head, {"api.openai.com", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Injected>(out));
  const Injected& inj = std::get<Injected>(out);
  Scrubber scrubber(inj.scrub);
  // Base64 of the value at offset 0 (its middle is stable whatever follows).
  const std::string echo = "{\"b64\":\"c2stUkVBTC1vcGVuYWktMDEyMzQ1Njc4OQ==\"}";
  EXPECT_EQ(scrubber.scrub(echo).find("c2stUkVBTC1vcGVuYWktMDEyMzQ1Njc4"), std::string::npos)
      << scrubber.scrub(echo);
  EXPECT_EQ(scrubber.scrub(std::string(kOpenAiValue)), kOpenAiPh);
}

TEST(RewriteTest, RangeIsRemovedFromCredentialedRequestsOnly) {
  const auto specs = table();
  RequestHead head;
  ASSERT_EQ(feedRequestHead(fill("GET / HTTP/1.1\r\nHost: api.openai.com\r\nRange: "
                                 "bytes=3-5\r\nIf-Range: \"e\"\r\n\r\n"),
                            0, &head)
                .status,
            Status::Done);
  RewriteOutcome out = rewriteCredentials(head, {"api.openai.com", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Injected>(out));
  EXPECT_TRUE(std::get<Injected>(out).range_removed);
  EXPECT_EQ(head.headers.find("range"), nullptr);
  EXPECT_EQ(head.headers.find("if-range"), nullptr);

  RequestHead plain;
  ASSERT_EQ(feedRequestHead("GET / HTTP/1.1\r\nHost: elsewhere.test\r\nRange: bytes=3-5\r\n\r\n", 0,
                            &plain)
                .status,
            Status::Done);
  RewriteOutcome none = rewriteCredentials(plain, {"elsewhere.test", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Injected>(none));
  EXPECT_FALSE(std::get<Injected>(none).range_removed);
  EXPECT_NE(plain.headers.find("range"), nullptr);
}

TEST(RewriteTest, PlaceholderInMethodRefuses) {
  RequestHead head;
  ASSERT_EQ(feedRequestHead("tgph_m / HTTP/1.1\r\nHost: a.test\r\n\r\n", 0, &head).status,
            Status::Done);
  std::vector<CredentialSpec> specs = table();
  specs[0].placeholder = "tgph_m";
  RewriteOutcome out = rewriteCredentials(head, {"a.test", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Refused>(out));
  EXPECT_EQ(std::get<Refused>(out).detail, "out_of_scope: method");
}

TEST(RewriteTest, InvalidSpecPlaceholderRefusesEverything) {
  RequestHead head;
  ASSERT_EQ(feedRequestHead("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", 0, &head).status,
            Status::Done);
  std::vector<CredentialSpec> specs = table();
  specs[1].placeholder = "bad placeholder";
  RewriteOutcome out = rewriteCredentials(head, {"a.test", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Refused>(out));
  EXPECT_EQ(std::get<Refused>(out).reason, "credential_internal_error");
}

TEST(WipeSecretsTest, ClearsTheHead) {
  RequestHead head;
  ASSERT_EQ(
      feedRequestHead(fill("GET / HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"), 0, &head).status,
      Status::Done);
  const auto specs = table();
  ASSERT_TRUE(std::holds_alternative<Injected>(
      rewriteCredentials(head, {"api.openai.com", true, nullptr}, specs)));
  auto out = SecretBuffer::allocate(serializedSize(head));
  ASSERT_TRUE(out.ok());
  serializeTo(head, out->writable());
  EXPECT_NE(out->view().find(kOpenAiValue), std::string_view::npos);
  wipeSecrets(head);
  EXPECT_TRUE(head.headers.fields.empty());
  EXPECT_TRUE(head.target.empty());
}

TEST(AuditPathTest, NeverCarriesAPlaceholder) {
  const auto specs = table();
  auto path = [&](std::string target) {
    RequestHead head;
    EXPECT_EQ(feedRequestHead(fill("GET " + target + " HTTP/1.1\r\nHost: a.test\r\n\r\n"), 0, &head)
                  .status,
              Status::Done);
    return auditPath(head, specs);
  };
  EXPECT_EQ(path("/v1/chat?key={OPENAI}"), "/v1/chat");
  EXPECT_EQ(path("/v1/{OPENAI}/x"), "<redacted>");
  EXPECT_EQ(path("/v1/tgph%5Fgithub_111111111111111111111111"), "<redacted>");
  EXPECT_EQ(path("http://a.test/p?q"), "/p");
}

struct ValueCase {
  std::string label;
  std::string value;
  bool ok;
};

void PrintTo(const ValueCase& c, std::ostream* os) { *os << c.label; }

class ValidateSecretValueTest : public ::testing::TestWithParam<ValueCase> {};

TEST_P(ValidateSecretValueTest, Table) {
  const ValueCase& c = GetParam();
  const Result<void> r = validateSecretValue(c.value, kOpenAiPh);
  EXPECT_EQ(r.ok(), c.ok);
  if (!r.ok() && c.value.size() > 2) {
    EXPECT_EQ(r.message().find(c.value), std::string::npos) << "the error holds the value";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ValidateSecretValueTest,
    ::testing::Values(ValueCase{"plain", "sk-abc123", true}, ValueCase{"inner_space", "a b", true},
                      ValueCase{"obs_text", "caf\xc3\xa9", true}, ValueCase{"empty", "", false},
                      ValueCase{"cr", "sk-abc\r", false}, ValueCase{"lf", "sk-abc\n", false},
                      ValueCase{"crlf_inside", "sk\r\nX-Evil: 1", false},
                      ValueCase{"nul", std::string("sk\0abc", 6), false},
                      ValueCase{"tab", "sk\tabc", false}, ValueCase{"del", "sk\x7f", false},
                      ValueCase{"leading_space", " sk", false},
                      ValueCase{"trailing_space", "sk ", false},
                      ValueCase{"contains_placeholder", "x" + std::string(kOpenAiPh), false},
                      ValueCase{"inside_placeholder", "openai_000", false}),
    [](const ::testing::TestParamInfo<ValueCase>& info) { return info.param.label; });

TEST(ValidateCredentialSpecTest, Rules) {
  CredentialSpec ok = table()[0];
  EXPECT_TRUE(validateCredentialSpec(ok).ok());
  EXPECT_TRUE(validateCredentialSpec(table()[1]).ok());
  auto bad = [&](auto mutate) {
    CredentialSpec s = table()[0];
    mutate(s);
    return !validateCredentialSpec(s).ok();
  };
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.name.clear(); }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.placeholder = "has space"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.placeholder.clear(); }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.scope.clear(); }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_query = "key"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header.clear(); }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header = "Bad Header"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header = "Host"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header = "transfer-encoding"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header = "Connection"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header = "Expect"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.inject_header = "ACCEPT-ENCODING"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.format = "Bearer"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.format = "{value}{value}"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) { s.format = "Bearer {value}\r\nX: y"; }));
  EXPECT_TRUE(bad([](CredentialSpec& s) {
    s.inject_header.clear();
    s.inject_query = "a&b";
  }));
}

// The field checks the config loader calls (one validator for both).
TEST(ValidateCredentialSpecTest, FieldChecks) {
  for (std::string_view reserved : kReservedInjectHeaders) {
    std::string upper(reserved);
    for (char& c : upper) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    EXPECT_FALSE(checkInjectHeader(reserved).ok()) << reserved;
    EXPECT_FALSE(checkInjectHeader(upper).ok()) << upper;
  }
  EXPECT_EQ(std::size(kReservedInjectHeaders), 11u);
  EXPECT_TRUE(checkInjectHeader("Authorization").ok());
  EXPECT_TRUE(checkInjectHeader("X-Api-Key").ok());
  EXPECT_FALSE(checkInjectHeader("").ok());
  EXPECT_FALSE(checkInjectHeader("X Key:").ok());
  EXPECT_TRUE(checkInjectQuery("api_key").ok());
  EXPECT_FALSE(checkInjectQuery("").ok());
  EXPECT_FALSE(checkInjectQuery("a&b").ok());
  EXPECT_TRUE(checkPlaceholder("tgph_k_0123456789abcdef01234").ok());
  EXPECT_FALSE(checkPlaceholder("").ok());
  EXPECT_FALSE(checkPlaceholder("has space").ok());
  EXPECT_TRUE(checkInjectFormat("Bearer {value}").ok());
  EXPECT_FALSE(checkInjectFormat("Bearer").ok());
  EXPECT_FALSE(checkInjectFormat("{value}{value}").ok());
  EXPECT_FALSE(checkInjectFormat("{value}\r\nX: y").ok());
}

}  // namespace
}  // namespace tollgate::mitm

namespace tollgate::mitm {
namespace {

// The rewriter takes any protocol's request through RequestView: here the
// fields an HTTP/2 stream would carry (:method, :path, :authority, regular
// fields), no HTTP/1 head parsed.
TEST(RequestViewTest, AStreamShapedRequestIsRewrittenWithoutAnHttp1Head) {
  std::string path = "/v1/chat?access_token=" + std::string(kGithubPh);
  Headers fields;
  fields.add("authorization", "Bearer " + std::string(kGithubPh));
  RequestView view{"POST", path, TargetForm::Origin,
                   HostPort{HostName{"api.github.com", false}, std::nullopt}, fields};
  const auto specs = table();
  RewriteOutcome out = rewriteCredentials(view, {"api.github.com", true, nullptr}, specs);
  // A placeholder outside the credential's injection point (a header, for a
  // query credential) refuses the stream; nothing was changed.
  ASSERT_TRUE(std::holds_alternative<Refused>(out));
  EXPECT_EQ(std::get<Refused>(out).credential, "github");
  EXPECT_EQ(path, "/v1/chat?access_token=" + std::string(kGithubPh));

  Headers clean;
  RequestView ok{"GET", path, TargetForm::Origin,
                 HostPort{HostName{"api.github.com", false}, std::nullopt}, clean};
  out = rewriteCredentials(ok, {"api.github.com", true, nullptr}, specs);
  ASSERT_TRUE(std::holds_alternative<Injected>(out));
  EXPECT_EQ(std::get<Injected>(out).credentials, std::vector<std::string>{"github"});
  EXPECT_EQ(path, "/v1/chat?access_token=" + std::string(kGithubEncoded));
}

}  // namespace
}  // namespace tollgate::mitm
