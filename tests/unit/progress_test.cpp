#include "runtime/progress.h"

#include <gtest/gtest.h>

#include "runtime/log.h"

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

// A resumed stage: 300 of 500 units were done by the killed run. They count as done but not
// towards the rate: 100 new units in 10 s is 10 units/s, and 100 left take 10 s.
TEST(Progress, ResumedRunCountsEarlierUnitsButNotInTheRate) {
  double now = 0.0;
  Progress p("scoring", 500, "units", ProgressOptions{10.0, false}, [&] { return now; });
  p.resume_from(300);
  EXPECT_EQ(p.line(), "scoring: 300/500 units (60.0%, 300 done before), 0.00 units/s, ETA ?");
  now = 10.0;
  p.set(400);
  EXPECT_EQ(p.line(), "scoring: 400/500 units (80.0%, 300 done before), 10.0 units/s, ETA 10s");
}

// On a terminal the progress line is redrawn in place; a log message meanwhile clears it,
// is written on a line of its own, and the progress line is drawn again after it.
TEST(Progress, LogMessageDoesNotLandInsideTheLiveLine) {
  log_set_live_line("scoring: 1/2 units");
  ::testing::internal::CaptureStderr();
  log_info("hello");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "\r\033[Kkmoe: hello\nscoring: 1/2 units");
  log_set_live_line("");
  ::testing::internal::CaptureStderr();
  log_info("hello");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "kmoe: hello\n");
}

TEST(Progress, NoRateYetGivesUnknownEta) {
  double now = 5.0;
  Progress p("embedding", 10, "rows", ProgressOptions{10.0, false}, [&] { return now; });
  EXPECT_EQ(p.line(), "embedding: 0/10 rows (0.0%), 0.00 rows/s, ETA ?");
}

}  // namespace
}  // namespace kmoe
