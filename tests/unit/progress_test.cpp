#include "runtime/progress.h"

#include <gtest/gtest.h>

namespace kmoe {
namespace {

TEST(Progress, FormatsDurationsAndRates) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(187), "3m07s");
  EXPECT_EQ(format_duration(7500), "2h05m");
  EXPECT_EQ(format_duration(3 * 86400 + 4 * 3600 + 10), "3d04h");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_rate(3.4), "3.40");
  EXPECT_EQ(format_rate(12.34), "12.3");
  EXPECT_EQ(format_rate(1534), "1.53k");
  EXPECT_EQ(format_rate(2.5e6), "2.50M");
}

TEST(Progress, RateAndEtaFromTheClock) {
  double now = 100.0;
  Progress p("scoring", 500, "units", ProgressOptions{10.0, false}, [&] { return now; });
  now = 110.0;
  p.set(100);  // 10 units/s, 400 left -> 40 s
  EXPECT_EQ(p.line(), "scoring: 100/500 units (20.0%), 10.0 units/s, ETA 40s");
  now = 150.0;
  p.set(500);
  EXPECT_EQ(p.line(), "scoring: 500/500 units (100.0%), 10.0 units/s, done in 50s");
}

TEST(Progress, NoRateYetGivesUnknownEta) {
  double now = 5.0;
  Progress p("embedding", 10, "rows", ProgressOptions{10.0, false}, [&] { return now; });
  EXPECT_EQ(p.line(), "embedding: 0/10 rows (0.0%), 0.00 rows/s, ETA ?");
}

}  // namespace
}  // namespace kmoe
