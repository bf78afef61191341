// See checkpoint.h. RNG states travel as int64 arrays of their bytes because artifacts
// store integers as int64; they are a few kilobytes per rank.
#include "trainer/checkpoint.h"

#include <torch/torch.h>

#include "data/store/artifact_tensor.h"

namespace kmoe {

namespace {

void write_tensor_map(ArtifactWriter& w, const std::string& group, const std::map<std::string, at::Tensor>& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : m) {
    names.push_back(name);
    const at::Tensor cpu = t.detach().to(torch::kCPU).contiguous();
    if (cpu.scalar_type() == torch::kFloat64) {
      // Exactly, as their bits: a float32 copy would make a resumed sum differ from an
      // uninterrupted one (e.g. the MoE router load).
      artifact_write_tensor(w, group + "/" + name, cpu.view(torch::kInt64));
      w.set_attr(group + "/" + name, "float64_bits", int64_t{1});
    } else {
      artifact_write_tensor(w, group + "/" + name, cpu.to(torch::kFloat32));
    }
  }
  if (names.empty()) names.push_back("");
  w.write_strings(group + "_names", names);
}

std::map<std::string, at::Tensor> read_tensor_map(const ArtifactReader& r, const std::string& group) {
  std::map<std::string, at::Tensor> m;
  for (const auto& name : r.read_strings(group + "_names")) {
    if (name.empty()) continue;
    const std::string path = group + "/" + name;
    at::Tensor t = artifact_read_tensor(r, path);
    m[name] = r.has_attr(path, "float64_bits") ? t.view(torch::kFloat64) : t;
  }
  return m;
}

// [size, bytes] int64 on rank 0 from each rank's uint8 state (all the same length).
at::Tensor gather_states(MPI_Comm comm, const at::Tensor& mine) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const at::Tensor bytes = mine.to(torch::kCPU, torch::kUInt8).contiguous();
  const int n = static_cast<int>(bytes.numel());
  at::Tensor all = torch::zeros({size, n}, torch::kUInt8);
  MPI_Gather(bytes.data_ptr<uint8_t>(), n, MPI_UINT8_T, all.data_ptr<uint8_t>(), n, MPI_UINT8_T, 0, comm);
  return all.to(torch::kInt64);
}

std::vector<at::Tensor> split_states(const at::Tensor& all) {
  std::vector<at::Tensor> out;
  for (int64_t r = 0; r < all.size(0); ++r) out.push_back(all[r].to(torch::kUInt8).contiguous());
  return out;
}

}  // namespace

void checkpoint_write(MPI_Comm comm, const std::string& path, const Provenance& provenance, const Checkpoint& ckpt) {
  const at::Tensor rng_cpu = gather_states(comm, ckpt.rng_cpu.at(0));
  int has_cuda = ckpt.rng_cuda.empty() ? 0 : 1;
  MPI_Allreduce(MPI_IN_PLACE, &has_cuda, 1, MPI_INT, MPI_MIN, comm);
  at::Tensor rng_cuda;
  if (has_cuda) rng_cuda = gather_states(comm, ckpt.rng_cuda.at(0));

  ArtifactWriter w(comm, path, provenance);
  write_tensor_map(w, "weights", ckpt.weights);
  write_tensor_map(w, "optimizer/exp_avg", ckpt.exp_avg);
  write_tensor_map(w, "optimizer/exp_avg_sq", ckpt.exp_avg_sq);
  write_tensor_map(w, "extra", ckpt.extra);
  const std::vector<int64_t> scalars{ckpt.optimizer_steps, ckpt.next_step, ckpt.epoch};
  w.write_int64("cursor", {3}, scalars.data());
  w.set_attr("cursor", "layout", std::string("optimizer_steps, next_step (0-based), epoch"));
  const int64_t n = static_cast<int64_t>(ckpt.order.size());
  w.write_int64("data/order", {n}, ckpt.order.data());
  artifact_write_tensor(w, "rng/cpu", rng_cpu);
  if (has_cuda) artifact_write_tensor(w, "rng/cuda", rng_cuda);
  const auto& m = ckpt.metrics;
  const int64_t s = static_cast<int64_t>(m.step.size());
  w.write_int64("metrics/step", {s}, m.step.data());
  w.write_floats("metrics/loss", {s}, m.loss.data());
  w.write_floats("metrics/lr", {s}, m.lr.data());
  w.write_floats("metrics/grad_norm", {s}, m.grad_norm.data());
  w.write_floats("metrics/tokens_per_s", {s}, m.tokens_per_s.data());
  w.commit();
}

Checkpoint checkpoint_read(const std::string& path) {
  ArtifactReader r(path);
  Checkpoint c;
  try {
    c.weights = read_tensor_map(r, "weights");
    c.exp_avg = read_tensor_map(r, "optimizer/exp_avg");
    c.exp_avg_sq = read_tensor_map(r, "optimizer/exp_avg_sq");
    c.extra = read_tensor_map(r, "extra");
    const auto cursor = r.read_int64("cursor");
    if (cursor.size() != 3) throw std::runtime_error("'cursor' must hold 3 values");
    c.optimizer_steps = cursor[0];
    c.next_step = cursor[1];
    c.epoch = cursor[2];
    c.order = r.read_int64("data/order");
    c.rng_cpu = split_states(artifact_read_tensor(r, "rng/cpu"));
    if (r.has("rng/cuda")) c.rng_cuda = split_states(artifact_read_tensor(r, "rng/cuda"));
    c.metrics.step = r.read_int64("metrics/step");
    c.metrics.loss = r.read_floats("metrics/loss");
    c.metrics.lr = r.read_floats("metrics/lr");
    c.metrics.grad_norm = r.read_floats("metrics/grad_norm");
    c.metrics.tokens_per_s = r.read_floats("metrics/tokens_per_s");
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a usable checkpoint: " + e.what());
  }
  return c;
}

std::string checkpoint_mismatch(const std::string& path, const Provenance& expected) {
  const ArtifactStatus status = artifact_check(path, expected);
  return status.complete ? "" : status.reason;
}

}  // namespace kmoe
