#include "data/formats/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "temp_dir.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

// Writes a safetensors file by hand: `header` as given, then `data_bytes` zero bytes.
void file_write_raw(const std::string& path, const std::string& header, size_t data_bytes,
                    uint64_t header_len_override = 0) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = header_len_override ? header_len_override : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header;
  out << std::string(data_bytes, '\0');
}

// Runs `f`, expects it to throw, and returns the message.
TEST(Safetensors, EveryDtypeRoundTrips) {
  testing::TempDir dir;
  const std::string path = dir / "all.safetensors";
  torch::manual_seed(0);
  std::map<std::string, at::Tensor> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2, 3}, torch::kFloat64)},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(-3, 9, torch::kInt64).reshape({3, 4})},
      {"i32", torch::arange(-5, 5, torch::kInt32)},
      {"i16", torch::arange(-4, 4, torch::kInt16)},
      {"i8", torch::arange(-128, 128, torch::kInt32).to(torch::kInt8)},
      {"u8", torch::arange(0, 256, torch::kInt32).to(torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::zeros({0, 7})},
      {"strided", torch::randn({4, 6}).t()},
  };
  safetensors_write(path, tensors, {{"format", "pt"}, {"note", "kmoe test"}});
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));

  SafetensorsFile f(path);
  EXPECT_EQ(f.entries().size(), tensors.size());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "kmoe test");
  EXPECT_EQ(f.entries().at("bf16").dtype, "BF16");
  EXPECT_EQ(f.entries().at("u8").dtype, "U8");
  for (const auto& [name, t] : tensors) {
    const at::Tensor got = f.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
}

TEST(Safetensors, HeaderIsPaddedToEightBytesWithSpaces) {
  testing::TempDir dir;
  const std::string path = dir / "pad.safetensors";
  safetensors_write(path, {{"a", torch::ones({3})}});
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(len % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + len + 12);
  const std::string header = bytes.substr(8, len);
  EXPECT_EQ(nlohmann::json::parse(header)["a"]["data_offsets"], nlohmann::json({0, 12}));
  const auto last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
}

TEST(Safetensors, MissingTensorNamesFileAndTensor) {
  testing::TempDir dir;
  const std::string path = dir / "m.safetensors";
  safetensors_write(path, {{"a", torch::ones({3})}});
  SafetensorsFile f(path);
  EXPECT_TRUE(f.has("a"));
  EXPECT_FALSE(f.has("b"));
  const std::string msg = error_of([&] { f.tensor("b"); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'b'"), std::string::npos) << msg;
}

TEST(Safetensors, TruncatedFileIsRejected) {
  testing::TempDir dir;
  const std::string path = dir / "t.safetensors";
  safetensors_write(path, {{"weight", torch::ones({16})}});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);  // cut into the data
  std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'weight'"), std::string::npos) << msg;

  std::filesystem::resize_file(path, 5);  // not even the header length
  msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(Safetensors, HeaderLengthPastEndIsRejected) {
  testing::TempDir dir;
  const std::string path = dir / "h.safetensors";
  file_write_raw(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, 1 << 20);
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("header length"), std::string::npos) << msg;
}

TEST(Safetensors, OffsetsPastEndOfDataAreRejected) {
  testing::TempDir dir;
  const std::string path = dir / "o.safetensors";
  file_write_raw(path,
                 R"({"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("far":{"dtype":"F32","shape":[2],"data_offsets":[100,108]}})",
                 8);
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'far'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("past the end"), std::string::npos) << msg;
}

TEST(Safetensors, UnknownDtypeIsRejected) {
  testing::TempDir dir;
  const std::string path = dir / "d.safetensors";
  file_write_raw(path, R"({"w":{"dtype":"F12","shape":[2],"data_offsets":[0,4]}})", 4);
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("F12"), std::string::npos) << msg;
}

TEST(Safetensors, DtypeTimesShapeNotByteLengthIsRejected) {
  testing::TempDir dir;
  const std::string path = dir / "s.safetensors";
  file_write_raw(path, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24);
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("24 bytes"), std::string::npos) << msg;
}

TEST(Safetensors, OverlappingEntriesAreRejected) {
  testing::TempDir dir;
  const std::string path = dir / "ov.safetensors";
  file_write_raw(path,
                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 12);
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
}

TEST(Safetensors, MalformedHeaderEntriesAreRejected) {
  testing::TempDir dir;
  const std::string path = dir / "bad.safetensors";
  file_write_raw(path, R"({"w":{"dtype":"F32","shape":[2]}})", 8);
  std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("data_offsets"), std::string::npos) << msg;

  file_write_raw(path, R"({"w":{"dtype":"F32",)", 8);
  msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;

  EXPECT_THROW(SafetensorsFile(dir / "absent.safetensors"), std::runtime_error);
}

TEST(Safetensors, WriterRejectsUnstorableDtype) {
  testing::TempDir dir;
  const std::string path = dir / "c.safetensors";
  const std::string msg = error_of([&] { safetensors_write(path, {{"c", torch::zeros({2}, torch::kComplexFloat)}}); });
  EXPECT_NE(msg.find("'c'"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace kmoe
