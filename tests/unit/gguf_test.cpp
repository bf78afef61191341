#include "data/formats/gguf.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <optional>

#include "data/formats/float16.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

// A minimal GGUF writer, so that each test can build exactly the (good or bad) bytes it needs.
template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

struct GgufBuilder {
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::string data;
    std::optional<uint64_t> offset;  // forced offset (else laid out in order, aligned)
  };
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::vector<std::string> kvs;  // each a serialised key/value entry
  std::vector<Tensor> tensors;

  void kv(const std::string& key, GgufType type, const std::string& value_bytes) {
    std::string e;
    put_str(e, key);
    put<uint32_t>(e, static_cast<uint32_t>(type));
    kvs.push_back(e + value_bytes);
  }
  template <class T>
  void kv_scalar(const std::string& key, GgufType type, T v) {
    std::string b;
    put<T>(b, v);
    kv(key, type, b);
  }
  void kv_string(const std::string& key, const std::string& v) {
    std::string b;
    put_str(b, v);
    kv(key, GgufType::string, b);
  }
  template <class T>
  void kv_array(const std::string& key, GgufType elem, const std::vector<T>& v) {
    std::string b;
    put<uint32_t>(b, static_cast<uint32_t>(elem));
    put<uint64_t>(b, v.size());
    for (const T& x : v) put<T>(b, x);
    kv(key, GgufType::array, b);
  }
  void kv_strings(const std::string& key, const std::vector<std::string>& v) {
    std::string b;
    put<uint32_t>(b, static_cast<uint32_t>(GgufType::string));
    put<uint64_t>(b, v.size());
    for (const auto& s : v) put_str(b, s);
    kv(key, GgufType::array, b);
  }
  void tensor_f32(const std::string& name, std::vector<uint64_t> ne, const std::vector<float>& values) {
    tensors.push_back({name, std::move(ne), GGML_TYPE_F32,
                       std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4), std::nullopt});
  }

  std::string build() const {
    std::string out = "GGUF";
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensors.size());
    put<uint64_t>(out, kvs.size());
    for (const auto& e : kvs) out += e;
    uint64_t next = 0;
    std::vector<uint64_t> offsets;
    for (const Tensor& t : tensors) {
      offsets.push_back(t.offset.value_or(next));
      next = (next + t.data.size() + alignment - 1) / alignment * alignment;
      put_str(out, t.name);
      put<uint32_t>(out, t.ne.size());
      for (uint64_t n : t.ne) put<uint64_t>(out, n);
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, offsets.back());
    }
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    const size_t data_start = out.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].offset) continue;
      out.resize(std::max(out.size(), data_start + offsets[i]), '\0');
      out.replace(data_start + offsets[i], tensors[i].data.size(), tensors[i].data);
    }
    return out;
  }
  std::string write(const testing::TempDir& dir, const std::string& name = "model.gguf") const {
    const std::string path = dir / name;
    std::ofstream(path, std::ios::binary) << build();
    return path;
  }
};

GgufBuilder good_builder() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.tensor_f32("a", {4, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  b.tensor_f32("b", {3}, {-1, -2, -3});
  return b;
}

// Expects GgufFile(path) to throw a message that contains every one of `parts`.
void expect_open_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    GgufFile f(path);
    FAIL() << "expected an error opening " << path;
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

std::vector<float> values_of(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(Gguf, ReadsGoodFileWithTorchOrderShapes) {
  testing::TempDir dir;
  GgufFile f(good_builder().write(dir));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);  // default without general.alignment
  EXPECT_EQ(f.data_offset() % 32, 0u);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensor_info("a").ne, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(f.tensor_info("a").shape(), (std::vector<int64_t>{2, 4}));  // ne = [in, out] -> [out, in]
  const at::Tensor a = f.tensor("a");
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(a[1][0].item<float>(), 4.0f);  // ne[0] is the fastest dimension
  EXPECT_EQ(values_of(f.tensor("b")), (std::vector<float>{-1, -2, -3}));
  EXPECT_EQ(f.tensor_info("b").offset, 32u);  // second tensor aligned
}

// Found by tests/scripts/fuzz_formats.sh: a tensor with no element read through a null
// destination (undefined behaviour); it reads as an empty tensor of its shape.
TEST(Gguf, EmptyTensorReadsAsEmpty) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  b.tensor_f32("empty", {0, 3}, {});
  GgufFile f(b.write(dir));
  const at::Tensor e = f.tensor("empty");
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(values_of(f.tensor("b")), (std::vector<float>{-1, -2, -3}));
}

TEST(Gguf, ReadsEveryMetadataValueType) {
  testing::TempDir dir;
  GgufBuilder b;
  b.kv_scalar<uint8_t>("u8", GgufType::uint8, 200);
  b.kv_scalar<int8_t>("i8", GgufType::int8, -100);
  b.kv_scalar<uint16_t>("u16", GgufType::uint16, 60000);
  b.kv_scalar<int16_t>("i16", GgufType::int16, -30000);
  b.kv_scalar<uint32_t>("u32", GgufType::uint32, 4000000000u);
  b.kv_scalar<int32_t>("i32", GgufType::int32, -2000000000);
  b.kv_scalar<uint64_t>("u64", GgufType::uint64, (uint64_t{1} << 63) + 1);
  b.kv_scalar<int64_t>("i64", GgufType::int64, -(int64_t{1} << 50));
  b.kv_scalar<float>("f32", GgufType::float32, 0.1f);
  b.kv_scalar<double>("f64", GgufType::float64, 0.1);
  b.kv_scalar<uint8_t>("yes", GgufType::boolean, 1);
  b.kv_string("s", "Ġhello");
  b.kv_array<uint64_t>("au64", GgufType::uint64, {1, uint64_t{1} << 40});
  b.kv_array<double>("af64", GgufType::float64, {0.25, -1e300});
  b.kv_array<int16_t>("ai16", GgufType::int16, {-5, 7});
  b.kv_strings("astr", {"x", "", "yz"});
  std::string nested;  // [[1, 2], []] as arrays of int32
  put<uint32_t>(nested, static_cast<uint32_t>(GgufType::array));
  put<uint64_t>(nested, 2);
  put<uint32_t>(nested, static_cast<uint32_t>(GgufType::int32));
  put<uint64_t>(nested, 2);
  put<int32_t>(nested, 1);
  put<int32_t>(nested, 2);
  put<uint32_t>(nested, static_cast<uint32_t>(GgufType::int32));
  put<uint64_t>(nested, 0);
  b.kv("nested", GgufType::array, nested);
  GgufFile f(b.write(dir));
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_uint64("u64"), (uint64_t{1} << 63) + 1);
  EXPECT_EQ(f.get_int("i64"), -(int64_t{1} << 50));
  EXPECT_EQ(f.get_float("f32"), static_cast<double>(0.1f));
  EXPECT_EQ(f.get_float("f64"), 0.1);
  EXPECT_TRUE(f.get_bool("yes"));
  EXPECT_EQ(f.get_string("s"), "Ġhello");
  EXPECT_EQ(f.get_ints("au64"), (std::vector<int64_t>{1, int64_t{1} << 40}));
  EXPECT_EQ(f.get_floats("af64"), (std::vector<double>{0.25, -1e300}));
  EXPECT_EQ(f.get_ints("ai16"), (std::vector<int64_t>{-5, 7}));
  EXPECT_EQ(f.get_strings("astr"), (std::vector<std::string>{"x", "", "yz"}));
  const GgufValue& n = f.value("nested");
  EXPECT_EQ(n.array_type, GgufType::array);
  ASSERT_EQ(n.arrays.size(), 2u);
  EXPECT_EQ(n.arrays[0].ints, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(n.arrays[1].ints.empty());
}

TEST(Gguf, WrongTypeOrMissingKeyNamesFileAndKey) {
  testing::TempDir dir;
  const std::string path = good_builder().write(dir);
  GgufFile f(path);
  try {
    f.get_int("general.architecture");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": metadata key 'general.architecture' is string, expected an integer"),
              std::string::npos)
        << e.what();
  }
  try {
    f.get_string("llama.block_count");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": metadata key 'llama.block_count' is missing"), std::string::npos)
        << e.what();
  }
}

TEST(Gguf, AcceptsVersion2AndCustomAlignment) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  b.version = 2;
  b.alignment = 64;
  b.kv_scalar<uint32_t>("general.alignment", GgufType::uint32, 64);
  GgufFile f(b.write(dir));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor_info("b").offset, 64u);
  EXPECT_EQ(values_of(f.tensor("b")), (std::vector<float>{-1, -2, -3}));
}

TEST(Gguf, RejectsBadMagic) {
  testing::TempDir dir;
  std::string bytes = good_builder().build();
  bytes.replace(0, 4, "GGML");
  const std::string path = dir / "bad.gguf";
  std::ofstream(path, std::ios::binary) << bytes;
  expect_open_error(path, {path, "not a GGUF file (magic is not \"GGUF\")"});
}

TEST(Gguf, RejectsUnsupportedVersion) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  b.version = 1;
  const std::string path = b.write(dir);
  expect_open_error(path, {path, "unsupported GGUF version 1"});
}

TEST(Gguf, RejectsTruncatedTensorData) {
  testing::TempDir dir;
  std::string bytes = good_builder().build();
  bytes.resize(bytes.size() - 4);  // last float of tensor "b" is gone
  const std::string path = dir / "short.gguf";
  std::ofstream(path, std::ios::binary) << bytes;
  expect_open_error(path, {path, "tensor 'b' data (12 bytes at data offset 32) runs past the end of the file"});
}

TEST(Gguf, RejectsFileTruncatedInTensorInfos) {
  testing::TempDir dir;
  GgufBuilder b;
  b.tensor_f32("weights", {2}, {1, 2});
  std::string bytes = b.build();
  bytes.resize(4 + 4 + 8 + 8 + 8 + 7 + 4 + 3);  // cut inside the first dimension of tensor 'weights'
  const std::string path = dir / "cut.gguf";
  std::ofstream(path, std::ios::binary) << bytes;
  expect_open_error(path, {path, "dims of tensor 'weights' runs past the end of the file"});
}

TEST(Gguf, RejectsTensorOffsetPastEnd) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  b.tensors[1].offset = 1 << 20;
  const std::string path = b.write(dir);
  expect_open_error(path, {path, "tensor 'b' has offset 1048576 past the end of the data section"});
}

TEST(Gguf, RejectsUnknownGgmlType) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  b.tensors[0].type = 99;
  const std::string path = b.write(dir);
  expect_open_error(path, {path, "tensor 'a' has unknown ggml type id 99"});
}

TEST(Gguf, RejectsStringLengthPastEnd) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  std::string value;
  put<uint64_t>(value, uint64_t{1} << 40);  // claims a 1 TiB string
  value += "short";
  b.kv("general.name", GgufType::string, value);
  const std::string path = b.write(dir);
  expect_open_error(
      path, {path, "string length 1099511627776 of metadata key 'general.name'", "runs past the end of the file"});
}

TEST(Gguf, RejectsQuantisedRowNotWholeBlocks) {
  testing::TempDir dir;
  GgufBuilder b;
  b.tensors.push_back({"w", {48, 2}, GGML_TYPE_Q8_0, std::string(34 * 3, '\0'), std::nullopt});
  const std::string path = b.write(dir);
  expect_open_error(path, {path, "tensor 'w' has ne[0] = 48, not a multiple of the Q8_0 block size 32"});
}

// Found by fuzz_formats: dims whose product fits the per-dimension checks but whose byte size
// overflows int64 (UB before, now an error).
TEST(Gguf, RejectsTensorWhoseByteSizeOverflows) {
  testing::TempDir dir;
  GgufBuilder b;
  b.tensors.push_back({"w", {uint64_t{1} << 31, uint64_t{1} << 31}, GGML_TYPE_F32, std::string(16, '\0'), std::nullopt});
  const std::string path = b.write(dir);
  expect_open_error(path, {path, "tensor 'w' has an impossible size"});
}

TEST(Gguf, RejectsAlignmentNotPowerOfTwo) {
  testing::TempDir dir;
  GgufBuilder b = good_builder();
  b.kv_scalar<uint32_t>("general.alignment", GgufType::uint32, 48);
  const std::string path = b.write(dir);
  expect_open_error(path, {path, "general.alignment 48 is not a power of two"});
}

TEST(Gguf, MissingTensorNamesFileAndTensor) {
  testing::TempDir dir;
  const std::string path = good_builder().write(dir);
  GgufFile f(path);
  EXPECT_FALSE(f.has_tensor("blk.0.attn_q.weight"));
  try {
    f.tensor("blk.0.attn_q.weight");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": no tensor named 'blk.0.attn_q.weight'");
  }
}

TEST(Gguf, UnsupportedTypeNamesTensorAndType) {
  testing::TempDir dir;
  GgufBuilder b;
  b.tensors.push_back({"blk.0.ffn_down.weight", {256}, GGML_TYPE_Q6_K, std::string(210, '\0'), std::nullopt});
  const std::string path = b.write(dir);
  GgufFile f(path);  // a known type opens fine; only dequantising it fails
  try {
    f.tensor("blk.0.ffn_down.weight");
    FAIL();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path + ": tensor 'blk.0.ffn_down.weight': ggml type Q6_K (14) cannot be dequantised"),
              std::string::npos)
        << msg;
  }
}

// Hand-built blocks, values worked out from ggml's block layouts (independent of gguf-py).
std::string half(float f) {
  std::string s;
  put<uint16_t>(s, float_to_half_bits(f));
  return s;
}

TEST(Gguf, DequantisesQ8_0Block) {
  std::string blk = half(0.5f);
  for (int j = 0; j < 32; ++j) put<int8_t>(blk, static_cast<int8_t>(j % 2 ? -j : j * 4));
  std::vector<float> out(32);
  ggml_dequantize(GGML_TYPE_Q8_0, reinterpret_cast<const uint8_t*>(blk.data()), out.data(), 32, "t");
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.5f * (j % 2 ? -j : j * 4)) << j;
}

TEST(Gguf, DequantisesQ4_0LowNibblesFirst) {
  std::string blk = half(2.0f);
  for (int j = 0; j < 16; ++j) put<uint8_t>(blk, static_cast<uint8_t>(j | ((15 - j) << 4)));
  std::vector<float> out(32);
  ggml_dequantize(GGML_TYPE_Q4_0, reinterpret_cast<const uint8_t*>(blk.data()), out.data(), 32, "t");
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * (j - 8)) << j;            // low nibble of byte j
    EXPECT_EQ(out[j + 16], 2.0f * (15 - j - 8)) << j;  // high nibble of byte j
  }
}

TEST(Gguf, DequantisesQ4_1WithMin) {
  std::string blk = half(0.25f) + half(-1.0f);
  for (int j = 0; j < 16; ++j) put<uint8_t>(blk, static_cast<uint8_t>(j | (3 << 4)));
  std::vector<float> out(64);
  const std::string two = blk + blk;
  ggml_dequantize(GGML_TYPE_Q4_1, reinterpret_cast<const uint8_t*>(two.data()), out.data(), 64, "t");
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.25f * j - 1.0f) << j;
    EXPECT_EQ(out[j + 16], 0.25f * 3 - 1.0f) << j;
    EXPECT_EQ(out[32 + j], out[j]);
  }
}

TEST(Gguf, DequantisesF16AndBF16) {
  std::string f16 = half(1.5f) + half(-65504.f);
  std::vector<float> out(2);
  ggml_dequantize(GGML_TYPE_F16, reinterpret_cast<const uint8_t*>(f16.data()), out.data(), 2, "t");
  EXPECT_EQ(out, (std::vector<float>{1.5f, -65504.f}));
  std::string bf16;
  put<uint16_t>(bf16, 0x3fc0);  // 1.5
  put<uint16_t>(bf16, 0xc100);  // -8
  ggml_dequantize(GGML_TYPE_BF16, reinterpret_cast<const uint8_t*>(bf16.data()), out.data(), 2, "t");
  EXPECT_EQ(out, (std::vector<float>{1.5f, -8.f}));
}

TEST(Gguf, MapsGgufNamesToHfNames) {
  EXPECT_EQ(gguf_hf_name("token_embd.weight", "f"), "model.embed_tokens.weight");
  EXPECT_EQ(gguf_hf_name("output_norm.weight", "f"), "model.norm.weight");
  EXPECT_EQ(gguf_hf_name("output.weight", "f"), "lm_head.weight");
  EXPECT_EQ(gguf_hf_name("blk.12.attn_norm.weight", "f"), "model.layers.12.input_layernorm.weight");
  EXPECT_EQ(gguf_hf_name("blk.0.attn_output.weight", "f"), "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(gguf_hf_name("blk.3.attn_k.bias", "f"), "model.layers.3.self_attn.k_proj.bias");
  EXPECT_EQ(gguf_hf_name("blk.7.ffn_norm.weight", "f"), "model.layers.7.post_attention_layernorm.weight");
  EXPECT_EQ(gguf_hf_name("blk.7.ffn_gate.weight", "f"), "model.layers.7.mlp.gate_proj.weight");
  EXPECT_EQ(gguf_hf_name("blk.7.ffn_up.weight", "f"), "model.layers.7.mlp.up_proj.weight");
  EXPECT_EQ(gguf_hf_name("blk.7.ffn_down.weight", "f"), "model.layers.7.mlp.down_proj.weight");
  EXPECT_THROW(gguf_hf_name("blk.x.attn_q.weight", "f"), std::runtime_error);
  try {
    gguf_hf_name("blk.0.ffn_gate_exps.weight", "m.gguf");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("m.gguf: tensor 'blk.0.ffn_gate_exps.weight' has no HF name"),
              std::string::npos);
  }
}

// A 1-layer llama with 2 heads of dim 4 and 1 kv head, rows numbered so the un-permutation
// can be checked by hand: llama.cpp row h*2d + 2i + j holds HF row h*2d + j*d + i.
GgufBuilder tiny_llama(bool with_output) {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_scalar<uint32_t>("llama.context_length", GgufType::uint32, 128);
  b.kv_scalar<uint32_t>("llama.embedding_length", GgufType::uint32, 8);
  b.kv_scalar<uint32_t>("llama.block_count", GgufType::uint32, 1);
  b.kv_scalar<uint32_t>("llama.feed_forward_length", GgufType::uint32, 16);
  b.kv_scalar<uint32_t>("llama.attention.head_count", GgufType::uint32, 2);
  b.kv_scalar<uint32_t>("llama.attention.head_count_kv", GgufType::uint32, 1);
  b.kv_scalar<float>("llama.rope.freq_base", GgufType::float32, 500000.f);
  b.kv_scalar<float>("llama.attention.layer_norm_rms_epsilon", GgufType::float32, 1e-5f);
  b.kv_strings("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "b", "c"});
  b.kv_scalar<uint32_t>("tokenizer.ggml.bos_token_id", GgufType::uint32, 0);
  b.kv_scalar<uint32_t>("tokenizer.ggml.eos_token_id", GgufType::uint32, 1);
  auto rows = [](int n_rows, int cols) {
    std::vector<float> v;
    for (int r = 0; r < n_rows; ++r)
      for (int c = 0; c < cols; ++c) v.push_back(static_cast<float>(r * 100 + c));
    return v;
  };
  b.tensor_f32("token_embd.weight", {8, 5}, rows(5, 8));
  b.tensor_f32("blk.0.attn_q.weight", {8, 8}, rows(8, 8));
  b.tensor_f32("blk.0.attn_k.weight", {8, 4}, rows(4, 8));
  b.tensor_f32("blk.0.attn_v.weight", {8, 4}, rows(4, 8));
  if (with_output) b.tensor_f32("output.weight", {8, 5}, rows(5, 8));
  return b;
}

TEST(Gguf, ModelConfigFromLlamaMetadata) {
  testing::TempDir dir;
  GgufFile f(tiny_llama(false).write(dir));
  const ModelConfig c = gguf_model_config(f);
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.hidden_size, 8);
  EXPECT_EQ(c.num_hidden_layers, 1);
  EXPECT_EQ(c.intermediate_size, 16);
  EXPECT_EQ(c.num_attention_heads, 2);
  EXPECT_EQ(c.num_key_value_heads, 1);
  EXPECT_EQ(c.head_dim, 4);  // no rope.dimension_count: hidden / heads
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rms_norm_eps, static_cast<double>(1e-5f));
  EXPECT_EQ(c.vocab_size, 5);  // from the token list
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.pad_token_id, -1);
  EXPECT_TRUE(c.tie_word_embeddings);
  GgufFile g(tiny_llama(true).write(dir, "untied.gguf"));
  EXPECT_FALSE(gguf_model_config(g).tie_word_embeddings);
}

TEST(Gguf, HfWeightsUnpermuteQueryAndKeyRows) {
  testing::TempDir dir;
  GgufFile f(tiny_llama(false).write(dir));
  const auto w = gguf_hf_weights(f, gguf_model_config(f));
  EXPECT_EQ(w.count("lm_head.weight"), 0u);
  const at::Tensor q = w.at("model.layers.0.self_attn.q_proj.weight");  // [8, 8]: 2 heads, d = 2 pairs
  const at::Tensor k = w.at("model.layers.0.self_attn.k_proj.weight");  // [4, 8]: 1 kv head
  // HF row h*4 + j*2 + i comes from llama.cpp row h*4 + 2i + j.
  const std::vector<int> q_from = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) EXPECT_EQ(q[r][1].item<float>(), q_from[r] * 100 + 1) << "q row " << r;
  const std::vector<int> k_from = {0, 2, 1, 3};
  for (int r = 0; r < 4; ++r) EXPECT_EQ(k[r][5].item<float>(), k_from[r] * 100 + 5) << "k row " << r;
  EXPECT_TRUE(at::equal(w.at("model.layers.0.self_attn.v_proj.weight"), f.tensor("blk.0.attn_v.weight")));
  GgufFile g(tiny_llama(true).write(dir, "untied.gguf"));
  EXPECT_TRUE(at::equal(gguf_hf_weights(g, gguf_model_config(g)).at("lm_head.weight"), g.tensor("output.weight")));
}

TEST(Gguf, TokenizerDataLeavesMissingKeysUnset) {
  testing::TempDir dir;
  GgufBuilder b = tiny_llama(false);
  b.kv_string("tokenizer.ggml.model", "llama");
  b.kv_array<float>("tokenizer.ggml.scores", GgufType::float32, {0, 0, -1.5f, -2.5f, -3.5f});
  b.kv_array<int32_t>("tokenizer.ggml.token_type", GgufType::int32, {3, 3, 1, 1, 6});
  b.kv_scalar<uint8_t>("tokenizer.ggml.add_bos_token", GgufType::boolean, 1);
  GgufFile f(b.write(dir));
  const GgufTokenizerData t = gguf_tokenizer_data(f);
  EXPECT_EQ(t.model, "llama");
  EXPECT_EQ(t.tokens.size(), 5u);
  EXPECT_EQ(t.scores, (std::vector<float>{0, 0, -1.5f, -2.5f, -3.5f}));
  EXPECT_EQ(t.token_type, (std::vector<int32_t>{3, 3, 1, 1, 6}));
  EXPECT_EQ(t.bos_id, 0);
  EXPECT_EQ(t.eos_id, 1);
  EXPECT_EQ(t.unk_id, -1);
  EXPECT_EQ(t.add_bos_token, std::optional<bool>(true));
  EXPECT_FALSE(t.add_eos_token.has_value());
  EXPECT_TRUE(t.merges.empty());
  EXPECT_TRUE(t.chat_template.empty());
}

}  // namespace
}  // namespace kmoe
