#include "gateway/metrics.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tollgate::gateway
