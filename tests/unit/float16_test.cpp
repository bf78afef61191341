#include "data/formats/float16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace kmoe {
namespace {

TEST(Float16, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_bits_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(f))));
      continue;
    }
    ASSERT_EQ(float_to_half_bits(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Float16, KnownValuesAndRounding) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00);  // rounds to +inf
  EXPECT_EQ(float_to_half_bits(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(float_to_half_bits(5.9604645e-8f), 0x0001);       // smallest subnormal
  EXPECT_EQ(float_to_half_bits(2.9802322e-8f), 0x0000);       // exactly half of it: ties to even
  EXPECT_EQ(float_to_half_bits(1.0f + 1.0f / 2048), 0x3c00);  // tie between 1 and next: even
  EXPECT_EQ(float_to_half_bits(1.0f + 3.0f / 2048), 0x3c02);  // tie: rounds up to even
  EXPECT_FLOAT_EQ(half_bits_to_float(0x3555), 0.333251953125f);
}

// Every float between two neighbouring halves goes to the nearer one.
TEST(Float16, RoundsToNearest) {
  for (uint16_t h = 0x0001; h < 0x7bff; h += 97) {
    const float lo = half_bits_to_float(h), hi = half_bits_to_float(static_cast<uint16_t>(h + 1));
    const float just_below_mid = std::nextafter(lo + (hi - lo) / 2, lo);
    const float just_above_mid = std::nextafter(lo + (hi - lo) / 2, hi);
    EXPECT_EQ(float_to_half_bits(just_below_mid), h);
    EXPECT_EQ(float_to_half_bits(just_above_mid), h + 1);
  }
}

}  // namespace
}  // namespace kmoe
