// GGUF reader, dequantisation and the GGUF -> HF mapping. See gguf.h for the format.
// Dequantisation must equal gguf-py's (and so transformers') float32 values bit for bit:
// Q4_1 is d*q + m with two roundings, so floating-point contraction into an FMA is switched
// off for this file (GCC contracts by default on targets with FMA, e.g. aarch64).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "data/formats/gguf.h"

#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "data/formats/float16.h"

namespace kmoe {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

struct GgmlTypeTraits {
  uint32_t id;
  const char* name;
  int64_t block_elems, block_bytes;
};
// ggml.h / gguf-py GGML_QUANT_SIZES (ids 4 and 5 were removed from ggml).
constexpr GgmlTypeTraits kGgmlTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 40},
    {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},   {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},       {31, "Q4_0_4_4", 32, 18}, {32, "Q4_0_4_8", 32, 18}, {33, "Q4_0_8_8", 32, 18},
};

const GgmlTypeTraits* ggml_traits(uint32_t type) {
  for (const auto& t : kGgmlTypes)
    if (t.id == type) return &t;
  return nullptr;
}

// Bounds-checked reads from the mapped file; every error names the file and what was read.
struct GgufCursor {
  const std::string& path;
  const uint8_t* base;
  uint64_t size;
  uint64_t pos = 0;

  [[noreturn]] void fail_past_end(uint64_t n, const std::string& what) const {
    throw std::runtime_error(path + ": " + what + " runs past the end of the file (" + std::to_string(n) +
                             " bytes at offset " + std::to_string(pos) + ", file has " + std::to_string(size) + ")");
  }
  void need(uint64_t n, const std::string& what) const {
    if (n > size - pos) fail_past_end(n, what);
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>("length of " + what);
    if (n > size - pos) {
      throw std::runtime_error(path + ": string length " + std::to_string(n) + " of " + what + " at offset " +
                               std::to_string(pos - 8) + " runs past the end of the file (" + std::to_string(size) +
                               " bytes)");
    }
    std::string s(reinterpret_cast<const char*>(base + pos), n);
    pos += n;
    return s;
  }
};

uint64_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::uint8:
    case GgufType::int8:
    case GgufType::boolean:
      return 1;
    case GgufType::uint16:
    case GgufType::int16:
      return 2;
    case GgufType::uint32:
    case GgufType::int32:
    case GgufType::float32:
      return 4;
    case GgufType::uint64:
    case GgufType::int64:
    case GgufType::float64:
    case GgufType::string:  // at least its 8-byte length
    case GgufType::array:   // at least its type and count
      return 8;
  }
  return 1;
}

bool gguf_type_valid(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::float64);
}

// Appends one element of type t (not array) to v.
void gguf_read_scalar(GgufCursor& c, GgufType t, GgufValue& v, const std::string& what) {
  switch (t) {
    case GgufType::uint8:
      v.ints.push_back(c.read<uint8_t>(what));
      break;
    case GgufType::int8:
      v.ints.push_back(c.read<int8_t>(what));
      break;
    case GgufType::uint16:
      v.ints.push_back(c.read<uint16_t>(what));
      break;
    case GgufType::int16:
      v.ints.push_back(c.read<int16_t>(what));
      break;
    case GgufType::uint32:
      v.ints.push_back(c.read<uint32_t>(what));
      break;
    case GgufType::int32:
      v.ints.push_back(c.read<int32_t>(what));
      break;
    case GgufType::uint64:
      v.ints.push_back(static_cast<int64_t>(c.read<uint64_t>(what)));
      break;
    case GgufType::int64:
      v.ints.push_back(c.read<int64_t>(what));
      break;
    case GgufType::float32:
      v.floats.push_back(c.read<float>(what));
      break;
    case GgufType::float64:
      v.floats.push_back(c.read<double>(what));
      break;
    case GgufType::boolean: {
      const uint8_t b = c.read<uint8_t>(what);
      if (b > 1) throw std::runtime_error(c.path + ": " + what + " is a bool with value " + std::to_string(b));
      v.ints.push_back(b);
      break;
    }
    case GgufType::string:
      v.strings.push_back(c.read_string(what));
      break;
    case GgufType::array:
      break;  // handled by gguf_read_value
  }
}

GgufValue gguf_read_value(GgufCursor& c, GgufType t, const std::string& what, int depth) {
  GgufValue v;
  v.type = t;
  if (t != GgufType::array) {
    gguf_read_scalar(c, t, v, what);
    return v;
  }
  if (depth > 8) throw std::runtime_error(c.path + ": " + what + " nests arrays more than 8 deep");
  const uint32_t et = c.read<uint32_t>("array type of " + what);
  if (!gguf_type_valid(et)) {
    throw std::runtime_error(c.path + ": " + what + " is an array of unknown value type " + std::to_string(et));
  }
  v.array_type = static_cast<GgufType>(et);
  const uint64_t n = c.read<uint64_t>("array length of " + what);
  if (n > (c.size - c.pos) / gguf_scalar_size(v.array_type)) {
    throw std::runtime_error(c.path + ": array length " + std::to_string(n) + " of " + what +
                             " runs past the end of the file");
  }
  if (v.array_type == GgufType::array) {
    v.arrays.reserve(n);
    for (uint64_t i = 0; i < n; ++i) v.arrays.push_back(gguf_read_value(c, GgufType::array, what, depth + 1));
  } else {
    if (v.array_type == GgufType::string) v.strings.reserve(n);
    for (uint64_t i = 0; i < n; ++i) gguf_read_scalar(c, v.array_type, v, what);
  }
  return v;
}

bool gguf_is_int(GgufType t) {
  return t != GgufType::float32 && t != GgufType::float64 && t != GgufType::string && t != GgufType::array &&
         t != GgufType::boolean;
}
bool gguf_is_float(GgufType t) {
  return t == GgufType::float32 || t == GgufType::float64;
}

[[noreturn]] void gguf_fail_type(const std::string& path, const std::string& key, const GgufValue& v,
                                 const char* wanted) {
  std::string got = gguf_type_name(v.type);
  if (v.type == GgufType::array) got += std::string(" of ") + gguf_type_name(v.array_type);
  throw std::runtime_error(path + ": metadata key '" + key + "' is " + got + ", expected " + wanted);
}

// --- dequantisation: block layouts as ggml-common.h ---

inline float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_bits_to_float(h);
}

void dequant_q8_0(const uint8_t* src, float* dst, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* blk = src + b * 34;  // fp16 d, int8 q[32]
    const float d = fp16_at(blk);
    const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
    float* y = dst + b * 32;
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(q[j]) * d;
  }
}

void dequant_q4_0(const uint8_t* src, float* dst, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* blk = src + b * 18;  // fp16 d, uint8 qs[16]: low nibbles 0..15, high 16..31
    const float d = fp16_at(blk);
    const uint8_t* qs = blk + 2;
    float* y = dst + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(static_cast<int>(qs[j] & 0x0f) - 8);
      y[j + 16] = d * static_cast<float>(static_cast<int>(qs[j] >> 4) - 8);
    }
  }
}

void dequant_q4_1(const uint8_t* src, float* dst, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* blk = src + b * 20;  // fp16 d, fp16 m, uint8 qs[16]
    const float d = fp16_at(blk);
    const float m = fp16_at(blk + 2);
    const uint8_t* qs = blk + 4;
    float* y = dst + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(qs[j] & 0x0f) + m;
      y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
    }
  }
}

void dequant_f16(const uint8_t* src, float* dst, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) dst[i] = fp16_at(src + 2 * i);
}

void dequant_bf16(const uint8_t* src, float* dst, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    const uint32_t x = static_cast<uint32_t>(h) << 16;
    std::memcpy(dst + i, &x, 4);
  }
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                "bool",  "string", "array",  "uint64", "int64",  "float64"};
  const auto i = static_cast<uint32_t>(type);
  return i < 13 ? names[i] : "unknown";
}

const char* ggml_type_name(uint32_t type) {
  const GgmlTypeTraits* t = ggml_traits(type);
  return t ? t->name : "unknown";
}

bool ggml_type_size(uint32_t type, int64_t* block_elems, int64_t* block_bytes) {
  const GgmlTypeTraits* t = ggml_traits(type);
  if (!t) return false;
  *block_elems = t->block_elems;
  *block_bytes = t->block_bytes;
  return true;
}

std::vector<int64_t> GgufTensorInfo::shape() const {
  return std::vector<int64_t>(ne.rbegin(), ne.rend());
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

void ggml_dequantize(uint32_t type, const uint8_t* src, float* dst, int64_t n, const std::string& what) {
  constexpr int64_t kGrain = 1 << 16;  // elements per parallel chunk
  if (n <= 0) return;                  // an empty tensor: nothing to read (and dst may be null)
  switch (type) {
    case GGML_TYPE_F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GGML_TYPE_F16:
      at::parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) { dequant_f16(src, dst, a, b); });
      return;
    case GGML_TYPE_BF16:
      at::parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) { dequant_bf16(src, dst, a, b); });
      return;
    case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q4_1: {
      if (n % 32 != 0) {
        throw std::runtime_error(what + ": " + std::to_string(n) + " elements is not a whole number of " +
                                 ggml_type_name(type) + " blocks of 32");
      }
      auto kernel = type == GGML_TYPE_Q8_0 ? dequant_q8_0 : type == GGML_TYPE_Q4_0 ? dequant_q4_0 : dequant_q4_1;
      at::parallel_for(0, n / 32, kGrain / 32, [&](int64_t a, int64_t b) { kernel(src, dst, a, b); });
      return;
    }
    default:
      throw std::runtime_error(what + ": ggml type " + ggml_type_name(type) + " (" + std::to_string(type) +
                               ") cannot be dequantised by kmoe (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  }
}

GgufFile::GgufFile(const std::string& path) : path_(path), file_(path, "GGUF file") {
  map_ = file_.data;
  map_size_ = file_.size;
  if (map_size_ < 4) {
    throw std::runtime_error(path + ": not a GGUF file (" + std::to_string(map_size_) + " bytes, no magic)");
  }

  GgufCursor c{path_, map_, map_size_};
  if (std::memcmp(map_, kMagic, 4) != 0) {
    throw std::runtime_error(path_ + ": not a GGUF file (magic is not \"GGUF\")");
  }
  c.pos = 4;
  version_ = c.read<uint32_t>("version");
  // v1 used 32-bit counts and lengths; v2 and v3 share the layout (v3 added big-endian files,
  // which show up here as a byte-swapped version number).
  if (version_ != 2 && version_ != 3) {
    throw std::runtime_error(path_ + ": unsupported GGUF version " + std::to_string(version_) +
                             " (kmoe reads versions 2 and 3, little-endian)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > map_size_ / 12 || n_tensors > map_size_ / 24) {
    throw std::runtime_error(path_ + ": header claims " + std::to_string(n_kv) + " metadata entries and " +
                             std::to_string(n_tensors) + " tensors, more than the file can hold");
  }

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key #" + std::to_string(i));
    const std::string what = "metadata key '" + key + "'";
    const uint32_t t = c.read<uint32_t>("type of " + what);
    if (!gguf_type_valid(t)) {
      throw std::runtime_error(path_ + ": " + what + " has unknown value type " + std::to_string(t));
    }
    GgufValue v = gguf_read_value(c, static_cast<GgufType>(t), what, 0);
    if (!metadata_.emplace(key, std::move(v)).second) {
      throw std::runtime_error(path_ + ": " + what + " appears twice");
    }
  }

  if (has_key("general.alignment")) {
    const int64_t a = get_int("general.alignment");
    if (a <= 0 || (a & (a - 1)) != 0) {
      throw std::runtime_error(path_ + ": general.alignment " + std::to_string(a) + " is not a power of two");
    }
    alignment_ = static_cast<uint64_t>(a);
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo ti;
    ti.name = c.read_string("name of tensor #" + std::to_string(i));
    const std::string what = "tensor '" + ti.name + "'";
    const uint32_t n_dims = c.read<uint32_t>("n_dims of " + what);
    if (n_dims < 1 || n_dims > kMaxDims) {
      throw std::runtime_error(path_ + ": " + what + " has " + std::to_string(n_dims) + " dimensions (1 to 4)");
    }
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("dims of " + what);
      if (ne > (uint64_t{1} << 40) || (ne > 0 && static_cast<uint64_t>(numel) > (uint64_t{1} << 62) / ne)) {
        throw std::runtime_error(path_ + ": " + what + " has an impossible dimension " + std::to_string(ne));
      }
      ti.ne.push_back(static_cast<int64_t>(ne));
      numel *= static_cast<int64_t>(ne);
    }
    ti.type = c.read<uint32_t>("type of " + what);
    ti.offset = c.read<uint64_t>("offset of " + what);
    int64_t block_elems = 0, block_bytes = 0;
    if (!ggml_type_size(ti.type, &block_elems, &block_bytes)) {
      throw std::runtime_error(path_ + ": " + what + " has unknown ggml type id " + std::to_string(ti.type));
    }
    if (ti.ne[0] % block_elems != 0) {
      throw std::runtime_error(path_ + ": " + what + " has ne[0] = " + std::to_string(ti.ne[0]) +
                               ", not a multiple of the " + ggml_type_name(ti.type) + " block size " +
                               std::to_string(block_elems));
    }
    if (numel / block_elems > (int64_t{1} << 56) / block_bytes) {  // 64 PiB: no real tensor, and no overflow below
      throw std::runtime_error(path_ + ": " + what + " has an impossible size: " + std::to_string(numel) + " " +
                               ggml_type_name(ti.type) + " elements");
    }
    ti.n_bytes = static_cast<uint64_t>(numel / block_elems * block_bytes);
    if (ti.offset % alignment_ != 0) {
      throw std::runtime_error(path_ + ": " + what + " has offset " + std::to_string(ti.offset) +
                               ", not a multiple of the alignment " + std::to_string(alignment_));
    }
    if (!tensor_index_.emplace(ti.name, tensors_.size()).second) {
      throw std::runtime_error(path_ + ": " + what + " appears twice");
    }
    tensors_.push_back(std::move(ti));
  }

  data_start_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
  for (const GgufTensorInfo& ti : tensors_) {
    const uint64_t data_size = map_size_ > data_start_ ? map_size_ - data_start_ : 0;
    if (ti.offset > data_size) {
      throw std::runtime_error(path_ + ": tensor '" + ti.name + "' has offset " + std::to_string(ti.offset) +
                               " past the end of the data section (" + std::to_string(data_size) + " bytes)");
    }
    if (ti.n_bytes > data_size - ti.offset) {
      throw std::runtime_error(path_ + ": tensor '" + ti.name + "' data (" + std::to_string(ti.n_bytes) +
                               " bytes at data offset " + std::to_string(ti.offset) +
                               ") runs past the end of the file; is it truncated?");
    }
  }
}

GgufFile::~GgufFile() = default;

const GgufValue& GgufFile::value(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) throw std::runtime_error(path_ + ": metadata key '" + key + "' is missing");
  return it->second;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = value(key);
  if (!gguf_is_int(v.type)) gguf_fail_type(path_, key, v, "an integer");
  if (v.type == GgufType::uint64 && v.ints[0] < 0) {
    throw std::runtime_error(path_ + ": metadata key '" + key + "' does not fit in int64");
  }
  return v.ints[0];
}

uint64_t GgufFile::get_uint64(const std::string& key) const {
  const GgufValue& v = value(key);
  if (!gguf_is_int(v.type)) gguf_fail_type(path_, key, v, "an integer");
  return static_cast<uint64_t>(v.ints[0]);
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = value(key);
  if (!gguf_is_float(v.type)) gguf_fail_type(path_, key, v, "float32 or float64");
  return v.floats[0];
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::boolean) gguf_fail_type(path_, key, v, "bool");
  return v.ints[0] != 0;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::string) gguf_fail_type(path_, key, v, "string");
  return v.strings[0];
}

std::vector<int64_t> GgufFile::get_ints(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::array || !(gguf_is_int(v.array_type) || v.array_type == GgufType::boolean)) {
    gguf_fail_type(path_, key, v, "array of integers");
  }
  return v.ints;
}

std::vector<double> GgufFile::get_floats(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::array || !gguf_is_float(v.array_type)) gguf_fail_type(path_, key, v, "array of floats");
  return v.floats;
}

std::vector<std::string> GgufFile::get_strings(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::array || v.array_type != GgufType::string) {
    gguf_fail_type(path_, key, v, "array of strings");
  }
  return v.strings;
}

const GgufTensorInfo& GgufFile::tensor_info(const std::string& name) const {
  auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) throw std::runtime_error(path_ + ": no tensor named '" + name + "'");
  return tensors_[it->second];
}

const uint8_t* GgufFile::tensor_bytes(const std::string& name) const {
  return map_ + data_start_ + tensor_info(name).offset;
}

at::Tensor GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo& ti = tensor_info(name);
  at::Tensor out = at::empty(ti.shape(), at::kFloat);
  ggml_dequantize(ti.type, map_ + data_start_ + ti.offset, out.data_ptr<float>(), ti.numel(),
                  path_ + ": tensor '" + name + "'");
  return out;
}

// --- GGUF -> HF ---

ModelConfig gguf_model_config(const GgufFile& file) {
  ModelConfig cfg;
  const std::string arch = file.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2") {
    throw std::runtime_error(file.path() + ": general.architecture '" + arch +
                             "' is not supported (kmoe reads llama and qwen2 GGUF files)");
  }
  cfg.architecture = arch;
  // transformers: llama.cpp files Mistral models as llama; the model name tells them apart.
  if (arch == "llama" && file.has_key("general.name") &&
      file.get_string("general.name").find("mistral") != std::string::npos) {
    cfg.architecture = "mistral";
  }
  const std::string p = arch + ".";
  cfg.max_position_embeddings = file.get_int(p + "context_length");
  cfg.hidden_size = file.get_int(p + "embedding_length");
  cfg.num_hidden_layers = file.get_int(p + "block_count");
  cfg.intermediate_size = file.get_int(p + "feed_forward_length");
  cfg.num_attention_heads = file.get_int(p + "attention.head_count");
  cfg.num_key_value_heads = file.has_key(p + "attention.head_count_kv") ? file.get_int(p + "attention.head_count_kv")
                                                                        : cfg.num_attention_heads;
  if (cfg.num_attention_heads <= 0 || cfg.hidden_size % cfg.num_attention_heads != 0 || cfg.num_key_value_heads <= 0 ||
      cfg.num_attention_heads % cfg.num_key_value_heads != 0) {
    throw std::runtime_error(file.path() + ": " + p + "attention.head_count " +
                             std::to_string(cfg.num_attention_heads) + " / head_count_kv " +
                             std::to_string(cfg.num_key_value_heads) + " do not divide the model");
  }
  if (file.has_key(p + "rope.freq_base")) cfg.rope_theta = file.get_float(p + "rope.freq_base");
  cfg.rms_norm_eps = file.get_float(p + "attention.layer_norm_rms_epsilon");
  cfg.head_dim = cfg.hidden_size / cfg.num_attention_heads;
  // transformers reads rope.dimension_count as head_dim for llama only.
  if (arch == "llama" && file.has_key(p + "rope.dimension_count"))
    cfg.head_dim = file.get_int(p + "rope.dimension_count");
  cfg.attention_bias = arch == "qwen2";
  cfg.vocab_size = file.has_key(p + "vocab_size")
                       ? file.get_int(p + "vocab_size")
                       : static_cast<int64_t>(file.value("tokenizer.ggml.tokens").strings.size());
  cfg.tie_word_embeddings = !file.has_tensor("output.weight");
  if (file.has_key("tokenizer.ggml.bos_token_id")) cfg.bos_token_id = file.get_int("tokenizer.ggml.bos_token_id");
  if (file.has_key("tokenizer.ggml.eos_token_id")) cfg.eos_token_ids = {file.get_int("tokenizer.ggml.eos_token_id")};
  if (file.has_key("tokenizer.ggml.padding_token_id"))
    cfg.pad_token_id = file.get_int("tokenizer.ggml.padding_token_id");
  return cfg;
}

std::string gguf_hf_name(const std::string& gguf_name, const std::string& file_for_errors) {
  if (gguf_name == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf_name == "output_norm.weight") return "model.norm.weight";
  if (gguf_name == "output.weight") return "lm_head.weight";
  static const std::map<std::string, std::string> kBlockParts = {
      {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},           {"ffn_down", "mlp.down_proj"},
  };
  // blk.<N>.<part>.<weight|bias>
  if (gguf_name.rfind("blk.", 0) == 0) {
    const size_t n_end = gguf_name.find('.', 4);
    const size_t part_end = gguf_name.rfind('.');
    if (n_end != std::string::npos && n_end > 4 && part_end > n_end &&
        gguf_name.find_first_not_of("0123456789", 4) == n_end) {
      const std::string layer = gguf_name.substr(4, n_end - 4);
      const std::string part = gguf_name.substr(n_end + 1, part_end - n_end - 1);
      const std::string suffix = gguf_name.substr(part_end + 1);
      auto it = kBlockParts.find(part);
      if (it != kBlockParts.end() && (suffix == "weight" || suffix == "bias")) {
        return "model.layers." + layer + "." + it->second + "." + suffix;
      }
    }
  }
  throw std::runtime_error(file_for_errors + ": tensor '" + gguf_name + "' has no HF name (not a llama/qwen2 weight)");
}

std::map<std::string, at::Tensor> gguf_hf_weights(const GgufFile& file, const ModelConfig& config) {
  std::map<std::string, at::Tensor> out;
  const bool permuted = file.get_string("general.architecture") == "llama";
  for (const GgufTensorInfo& ti : file.tensors()) {
    // llama.cpp stores Llama-3.1's rope scaling as a tensor; transformers ignores it too and
    // takes rope scaling from the config.
    if (ti.name == "rope_freqs.weight") continue;
    const std::string hf = gguf_hf_name(ti.name, file.path());
    at::Tensor w = file.tensor(ti.name);
    const bool is_q = ti.name.find(".attn_q.") != std::string::npos;
    const bool is_k = ti.name.find(".attn_k.") != std::string::npos;
    if (permuted && (is_q || is_k)) {
      // llama.cpp's converter reorders each head's rows from [half0, half1] to interleaved
      // pairs for its rope; transformers' reverse_permute_weights undoes it:
      // w [heads*dim*2, ...] -> [heads, dim, 2, ...] -> swap(1, 2) -> back.
      const int64_t heads = is_q ? config.num_attention_heads : config.num_key_value_heads;
      const int64_t rows = w.size(0);
      if (rows % (2 * heads) != 0) {
        throw std::runtime_error(file.path() + ": tensor '" + ti.name + "' has " + std::to_string(rows) +
                                 " rows, not divisible into " + std::to_string(heads) + " heads of row pairs");
      }
      std::vector<int64_t> split = {heads, rows / heads / 2, 2};
      for (int64_t d = 1; d < w.dim(); ++d) split.push_back(w.size(d));
      w = w.reshape(split).transpose(1, 2).reshape(w.sizes()).contiguous();
    }
    out.emplace(hf, std::move(w));
  }
  return out;
}

GgufTokenizerData gguf_tokenizer_data(const GgufFile& file) {
  GgufTokenizerData t;
  t.model = file.get_string("tokenizer.ggml.model");
  if (file.has_key("tokenizer.ggml.pre")) t.pre = file.get_string("tokenizer.ggml.pre");
  t.tokens = file.get_strings("tokenizer.ggml.tokens");
  if (file.has_key("tokenizer.ggml.scores")) {
    for (double s : file.get_floats("tokenizer.ggml.scores")) t.scores.push_back(static_cast<float>(s));
  }
  if (file.has_key("tokenizer.ggml.token_type")) {
    for (int64_t v : file.get_ints("tokenizer.ggml.token_type")) t.token_type.push_back(static_cast<int32_t>(v));
  }
  if (file.has_key("tokenizer.ggml.merges")) t.merges = file.get_strings("tokenizer.ggml.merges");
  const auto id = [&](const char* key, int64_t& dst) {
    if (file.has_key(key)) dst = file.get_int(key);
  };
  id("tokenizer.ggml.bos_token_id", t.bos_id);
  id("tokenizer.ggml.eos_token_id", t.eos_id);
  id("tokenizer.ggml.unknown_token_id", t.unk_id);
  id("tokenizer.ggml.padding_token_id", t.pad_id);
  const auto flag = [&](const char* key, std::optional<bool>& dst) {
    if (file.has_key(key)) dst = file.get_bool(key);
  };
  flag("tokenizer.ggml.add_bos_token", t.add_bos_token);
  flag("tokenizer.ggml.add_eos_token", t.add_eos_token);
  flag("tokenizer.ggml.add_space_prefix", t.add_space_prefix);
  if (file.has_key("tokenizer.chat_template")) t.chat_template = file.get_string("tokenizer.chat_template");
  const auto check_len = [&](size_t n, const char* key) {
    if (n != 0 && n != t.tokens.size()) {
      throw std::runtime_error(file.path() + ": " + key + " has " + std::to_string(n) + " entries but there are " +
                               std::to_string(t.tokens.size()) + " tokens");
    }
  };
  check_len(t.scores.size(), "tokenizer.ggml.scores");
  check_len(t.token_type.size(), "tokenizer.ggml.token_type");
  return t;
}

}  // namespace kmoe
