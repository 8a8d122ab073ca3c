#include "gateway/metrics.h"

#include <gtest/gtest.h>

#include <set>

#include <regex>
#include <sstream>

namespace tollgate::gateway {
namespace {

TEST(MetricsTest, ExpositionIsWellFormedAndCarriesCounters) {
  Counters c;
  c.add(Counter::kFlowsAccepted, 7);
  c.add(Counter::kDecisionDeny, 3);
  c.add(Counter::kBytesDown, 1234567);
  MetricsSnapshot s{&c, ca::LeafStats{.hits = 5, .misses = 1, .entries = 1}, 12.5, 2, 1,
                    MetricsSnapshot::UpstreamTlsStats{3, 7}};
  std::string text = renderMetrics(s);
  EXPECT_NE(text.find("\ntollgate_upstream_tls_resumed_total 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_flows_total 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_decisions_total{action=\"deny\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("tollgate_bytes_total{direction=\"down\"} 1234567\n"), std::string::npos);
  EXPECT_NE(text.find("tollgate_leaf_cache_total{result=\"hit\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("tollgate_reloads_total{result=\"failed\"} 1\n"), std::string::npos);
  // Every line is a comment or `name{labels} value`, and counters end in _total.
  std::regex sample(R"(^[a-z_]+(\{[a-z_]+="[a-z_]+"\})? -?[0-9.e+]+$)");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0 && line.find(" counter") != std::string::npos) {
      EXPECT_NE(line.find("_total counter"), std::string::npos) << line;
    }
    if (line.empty() || line[0] == '#') {
      continue;
    }
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
  }
}

TEST(MetricsTest, NoLeafFamiliesWithoutACa) {
  Counters c;
  std::string text = renderMetrics(MetricsSnapshot{&c, std::nullopt, 0, 0, 0, std::nullopt});
  EXPECT_EQ(text.find("leaf_cache"), std::string::npos);
}


TEST(MetricsTest, LabelledCountersAndHistogramsFollowTheExpositionFormat) {
  Counters c;
  Stats st;
  st.flows.add(promLabels({{"sandbox", "agents"}, {"action", "deny"}, {"reason", "rule"}}), 2);
  st.injections.add(promLabels({{"credential", "we\"ird"}}));
  st.upstream_connect.observe(std::chrono::microseconds(700));   // <= 0.001
  st.upstream_connect.observe(std::chrono::milliseconds(3));     // <= 0.005
  st.upstream_connect.observe(std::chrono::seconds(10));         // +Inf only
  st.limits.add(promLabels({{"sandbox", "agents"}, {"limit", "flows"}}), 3);
  SandboxLimits limits;
  auto held = limits.flows.tryAcquire("agents", 10);
  MetricsSnapshot s{&c, std::nullopt, 0, 0, 0, std::nullopt, &st};
  s.limits = &limits;
  std::string text = renderMetrics(s);
  EXPECT_NE(text.find("tollgate_limit_refusals_total{sandbox=\"agents\",limit=\"flows\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tollgate_sandbox_flows_open{sandbox=\"agents\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE tollgate_sandbox_mitm_flows_open gauge\n"), std::string::npos);
  EXPECT_NE(text.find("tollgate_sandbox_flows_total{sandbox=\"agents\",action=\"deny\",reason=\"rule\"} 2\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_credential_injections_total{credential=\"we\\\"ird\"} 1\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_upstream_connect_seconds_bucket{le=\"0.0005\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_upstream_connect_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_upstream_connect_seconds_bucket{le=\"0.005\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_upstream_connect_seconds_bucket{le=\"2.5\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_upstream_connect_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tollgate_upstream_connect_seconds_count 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE tollgate_mitm_handshake_seconds histogram\n"), std::string::npos);
  // Each family is declared once (a duplicate makes the whole scrape invalid).
  std::set<std::string> seen;
  for (size_t p = text.find("# TYPE "); p != std::string::npos; p = text.find("# TYPE ", p + 1)) {
    std::string name = text.substr(p + 7, text.find(' ', p + 7) - p - 7);
    EXPECT_TRUE(seen.insert(name).second) << "family declared twice: " << name;
  }
}

TEST(MetricsTest, BindingDropsAreOneCounterFamilyBySandboxAndCheck) {
  Counters c;
  MetricsSnapshot s{&c, std::nullopt, 0, 0, 0, std::nullopt};
  EXPECT_EQ(renderMetrics(s).find("tollgate_binding_drops_total"), std::string::npos)
      << "no family without ports";
  s.binding_drops = std::vector<MetricsSnapshot::BindingDrop>{{"untrusted", "source", 12},
                                                              {"untrusted", "neighbour", 0},
                                                              {"ci.build-2", "foreign_port", 3}};
  std::string text = renderMetrics(s);
  EXPECT_NE(text.find("# TYPE tollgate_binding_drops_total counter\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find("\ntollgate_binding_drops_total{sandbox=\"untrusted\",check=\"source\"} 12\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("tollgate_binding_drops_total{sandbox=\"untrusted\",check=\"neighbour\"} 0\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("tollgate_binding_drops_total{sandbox=\"ci.build-2\",check=\"foreign_port\"} 3\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.find("# TYPE tollgate_binding_drops_total"),
            text.rfind("# TYPE tollgate_binding_drops_total"));
  // Declared as soon as sandboxes have ports, before the first read.
  s.binding_drops = std::vector<MetricsSnapshot::BindingDrop>{};
  EXPECT_NE(renderMetrics(s).find("# TYPE tollgate_binding_drops_total counter\n"),
            std::string::npos);
}

}  // namespace
}  // namespace tollgate::gateway
