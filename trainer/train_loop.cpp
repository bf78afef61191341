// See train_loop.h. Every rank holds the whole data set and computes the step's order and
// token count itself (they are pure functions of the data, seed and step), so the only
// collectives of a step are the gradient buckets, one small all-reduce for the logged loss
// and the signal vote. The checkpoint is written at a step boundary, after the optimizer
// step, so a resume re-enters the loop exactly where an uninterrupted run would be.
#include "trainer/train_loop.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "runtime/log.h"
#include "runtime/progress.h"
#include "trainer/gpu_probe.h"
#include "trainer/grad_buckets.h"
#include "trainer/signals.h"

namespace kmoe {

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

at::Tensor rng_state(c10::Device device) {
  auto gen = device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void rng_set_state(c10::Device device, const at::Tensor& state) {
  auto gen = device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

void rng_seed(c10::Device device, uint64_t seed) {
  torch::manual_seed(seed);
  if (device.is_cuda()) {
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
}

// Summed cross-entropy of the response tokens of `batch`, a scalar carrying the graph. The
// sequences are packed into one row without padding (llama_hidden_packed: projections over
// all real tokens at once, attention per sequence), and the LM head runs only at the
// positions that predict a response token.
at::Tensor micro_batch_loss(const LlamaModel& model, TrainTarget& target, const std::vector<const SftExample*>& batch,
                            c10::Device device) {
  // A soft prompt's virtual tokens (model.soft_prompt) run before each sequence: the hook
  // sees them, as source 0 (not counted as data).
  const int64_t n_virtual = llama_soft_prompt_length(model);
  std::vector<int64_t> ids, lengths, source, at, labels;
  for (const auto* ex : batch) {
    const int64_t start = static_cast<int64_t>(ids.size());
    const auto& t = ex->tokens;
    source.insert(source.end(), n_virtual, 0);
    for (size_t k = 0; k < t.size(); ++k) {
      ids.push_back(t[k]);
      source.push_back(ex->source + 1);
      if (static_cast<int64_t>(k) >= std::max<int64_t>(1, ex->n_prompt)) {
        at.push_back(start + static_cast<int64_t>(k) - 1);  // the hidden state before token k predicts it
        labels.push_back(t[k]);
      }
    }
    lengths.push_back(static_cast<int64_t>(t.size()));
  }
  const int64_t rows = static_cast<int64_t>(source.size());
  if (target.before_forward) target.before_forward(torch::tensor(source, torch::kInt64).view({1, rows}).to(device));
  const at::Tensor hidden = llama_hidden_packed(model, torch::tensor(ids, torch::kInt64), lengths, target.hook);
  const at::Tensor logits =
      llama_lm_head(model, hidden.index_select(0, torch::tensor(at, torch::kInt64).to(hidden.device())));
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, torch::tensor(labels, torch::kInt64).to(logits.device()),
                          F::CrossEntropyFuncOptions().reduction(torch::kSum));
}

std::string format_metric(double v, const char* fmt) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Stops the run at a non-finite loss or gradient, naming the step and the first tensor whose
// gradient is not finite; the last checkpoint, made before this step, stays as it is.
[[noreturn]] void train_stop_non_finite(const TrainTarget& target, int64_t step, double loss,
                                        const TrainLoopOptions& options) {
  std::string where;
  for (const auto& [name, p] : target.params) {
    if (p.grad().defined() && !torch::isfinite(p.grad()).all().item<bool>()) {
      where = "the gradient of '" + name + "' is not finite";
      break;
    }
  }
  if (where.empty()) where = "the gradient norm is not finite";
  std::string kept = "no checkpoint was made";
  std::error_code ec;
  if (!options.checkpoint_path.empty() && std::filesystem::exists(options.checkpoint_path, ec))
    kept = "the last good checkpoint is kept in " + options.checkpoint_path;
  throw std::runtime_error("training stopped at step " + std::to_string(step) + ": loss " + std::to_string(loss) +
                           ", " + where + " (a lower --lr, --max-grad-norm or checking the data may help); " + kept +
                           "; nothing was written under the output name");
}

}  // namespace

int64_t train_steps_per_epoch(int64_t n_examples, int64_t global_batch) {
  return (n_examples + global_batch - 1) / global_batch;
}

int64_t train_total_steps(int64_t n_examples, const TrainLoopOptions& options) {
  if (options.max_steps > 0) return options.max_steps;
  return options.epochs * train_steps_per_epoch(n_examples, options.global_batch);
}

std::vector<int64_t> train_epoch_order(int64_t n_examples, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n_examples);
  for (int64_t i = 0; i < n_examples; ++i) order[i] = i;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
  for (int64_t i = n_examples - 1; i > 0; --i) {
    // rng() % (i + 1): modulo bias is irrelevant here and keeps the order platform-independent
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

std::vector<int64_t> train_rank_share(const std::vector<double>& costs, int rank, int size) {
  std::vector<int64_t> by_length(costs.size());
  for (size_t i = 0; i < costs.size(); ++i) by_length[i] = static_cast<int64_t>(i);
  std::stable_sort(by_length.begin(), by_length.end(), [&](int64_t a, int64_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(size, 0);
  std::vector<int64_t> mine;
  for (const int64_t i : by_length) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    load[r] += costs[i];
    if (r == rank) mine.push_back(i);
  }
  std::sort(mine.begin(), mine.end());
  return mine;
}

double gpu_peak_bf16_flops(const std::string& name) {
  // Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets (SXM parts).
  static const std::vector<std::pair<std::string, double>> table = {
      {"GH200", 989e12}, {"H200", 989e12}, {"H100 PCIe", 756e12}, {"H100", 989e12},
      {"B200", 2250e12}, {"A100", 312e12}, {"L40S", 362e12},      {"A10G", 70e12},
      {"A10", 125e12},   {"L4", 121e12},   {"4090", 165e12},      {"V100", 125e12}};
  for (const auto& [key, flops] : table) {
    if (name.find(key) != std::string::npos) return flops;
  }
  return 0;
}

TrainResult train_run(const LlamaModel& model, TrainTarget& target, const std::vector<SftExample>& data,
                      const TrainLoopOptions& options, Communicator& comm, const Provenance& provenance) {
  const MpiWorld& world = comm.world();
  const c10::Device device = comm.device();
  const int64_t n = static_cast<int64_t>(data.size());
  if (n == 0) throw std::invalid_argument("no training example (every record was dropped or the data is empty)");
  if (options.global_batch <= 0 || options.micro_batch <= 0)
    throw std::invalid_argument("--global-batch and --micro-batch must be positive");
  const int64_t spe = train_steps_per_epoch(n, options.global_batch);
  const int64_t total = train_total_steps(n, options);
  LrSchedule schedule;
  schedule.peak = options.lr;
  schedule.total_steps = total;
  schedule.decay = options.lr_decay;
  schedule.warmup_steps = options.warmup_steps >= 0
                              ? options.warmup_steps
                              : static_cast<int64_t>(std::ceil(options.warmup_ratio * static_cast<double>(total)));

  std::vector<at::Tensor> params;
  for (const auto& [name, p] : target.params) params.push_back(p);
  const std::unique_ptr<Optimizer> optimizer = optimizer_make(options.optimizer, params, options.adamw);
  Optimizer& opt = *optimizer;
  if (!target.lr_scales.empty()) opt.set_lr_scales(target.lr_scales);
  TrainResult result;

  // Resume, or start fresh with per-rank RNG streams.
  int64_t start = 0;
  std::string mismatch;
  int exists = 0;
  if (world.is_root() && !options.checkpoint_path.empty() && std::filesystem::exists(options.checkpoint_path)) {
    exists = 1;
    mismatch = checkpoint_mismatch(options.checkpoint_path, provenance);
  }
  MPI_Bcast(&exists, 1, MPI_INT, 0, world.comm);
  mismatch = mpi_bcast_string(world, mismatch);
  if (exists && !mismatch.empty()) {
    throw std::runtime_error(options.checkpoint_path + " is the checkpoint of a different run (" + mismatch +
                             "); refusing to resume from it: delete it, or pass --force to start over");
  }
  if (exists) {
    Checkpoint c = checkpoint_read(options.checkpoint_path);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < target.params.size(); ++i) {
      const auto& [name, p] = target.params[i];
      const auto w = c.weights.find(name);
      const auto m = c.exp_avg.find(name);
      const auto v = c.exp_avg_sq.find(name);
      if (w == c.weights.end() || m == c.exp_avg.end() || v == c.exp_avg_sq.end())
        throw std::runtime_error(options.checkpoint_path + ": no tensor '" + name + "' in the checkpoint");
      if (!w->second.sizes().equals(p.sizes()))
        throw std::runtime_error(options.checkpoint_path + ": tensor '" + name + "' has another shape");
      p.copy_(w->second);
      if (!m->second.sizes().equals(opt.state_a()[i].sizes()) || !v->second.sizes().equals(opt.state_b()[i].sizes()))
        throw std::runtime_error(options.checkpoint_path + ": the optimizer state of '" + name +
                                 "' has another shape (made by another optimizer?)");
      opt.state_a()[i].copy_(m->second);
      opt.state_b()[i].copy_(v->second);
    }
    opt.set_steps(c.optimizer_steps);
    if (c.order != train_epoch_order(n, options.seed, c.epoch))
      throw std::runtime_error(options.checkpoint_path + ": its data order is not this run's");
    start = c.next_step;
    result.metrics = c.metrics;
    if (static_cast<int>(c.rng_cpu.size()) == world.size) {
      rng_set_state(torch::kCPU, c.rng_cpu[world.rank]);
      if (device.is_cuda() && static_cast<int>(c.rng_cuda.size()) == world.size)
        rng_set_state(device, c.rng_cuda[world.rank]);
    } else {
      log_warn("the checkpoint was written by ", c.rng_cpu.size(), " ranks, this run has ", world.size,
               ": random streams restart from the seed (dropout masks differ from an uninterrupted run)");
      rng_seed(device, options.seed + 1000003ull * (world.rank + 1) + start);
    }
    if (target.restore_state) target.restore_state(c.extra);
    log_info("resuming from step ", start, " of ", total, " (", options.checkpoint_path, ")");
  } else {
    rng_seed(device, options.seed + 1000003ull * (world.rank + 1));
  }
  result.resumed_from = start;

  const char* delay_env = std::getenv("KMOE_TEST_STEP_DELAY_MS");  // tests: time to kill a run
  const int64_t delay_ms = delay_env ? std::atoll(delay_env) : 0;
  double peak = 0;
  if (device.is_cuda()) {
    const GpuInfo gpu = gpu_probe();
    if (device.index() < static_cast<int>(gpu.device_names.size()))
      peak = gpu_peak_bf16_flops(gpu.device_names[device.index()]);
  }

  // FLOPs of a sequence of n tokens, up to a constant: projections per token, attention per
  // token-pair; what train_rank_share balances across ranks.
  const ModelConfig& mc = model.config;
  const double per_token = static_cast<double>(mc.hidden_size) *
                           (2.0 * mc.num_attention_heads * mc.head_dim + 2.0 * mc.num_key_value_heads * mc.head_dim +
                            3.0 * mc.intermediate_size);
  const double per_pair = 2.0 * mc.num_attention_heads * mc.head_dim;
  const auto sequence_cost = [&](size_t n) { return static_cast<double>(n) * (per_token + per_pair * n); };

  train_signals_install();
  GradientBuckets buckets(comm, params);
  Progress progress("training", total, "steps", ProgressOptions{10.0, world.is_root()});
  progress.set(start);
  if (target.set_training) target.set_training(true);
  std::vector<int64_t> order;
  int64_t order_epoch = -1;
  auto save = [&](int64_t next_step) {
    Checkpoint c;
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < target.params.size(); ++i) {
      const auto& name = target.params[i].first;
      c.weights[name] = target.params[i].second.detach().to(torch::kCPU);
      c.exp_avg[name] = opt.state_a()[i].to(torch::kCPU);
      c.exp_avg_sq[name] = opt.state_b()[i].to(torch::kCPU);
    }
    c.optimizer_steps = opt.steps();
    c.next_step = next_step;
    c.epoch = next_step / spe;
    c.order = train_epoch_order(n, options.seed, c.epoch);
    c.rng_cpu = {rng_state(torch::kCPU)};
    if (device.is_cuda()) c.rng_cuda = {rng_state(device)};
    c.metrics = result.metrics;
    if (target.state) c.extra = target.state();
    checkpoint_write(world.comm, options.checkpoint_path, provenance, c);
    log_info("checkpoint at step ", next_step, " -> ", options.checkpoint_path);
  };

  for (int64_t step = start; step < total; ++step) {
    const double t0 = seconds_now();
    const int64_t epoch = step / spe;
    if (epoch != order_epoch) {
      order = train_epoch_order(n, options.seed, epoch);
      order_epoch = epoch;
    }
    const int64_t first = (step % spe) * options.global_batch;
    const int64_t count = std::min(options.global_batch, n - first);
    int64_t step_targets = 0, step_tokens = 0;  // of the whole global batch
    for (int64_t k = first; k < first + count; ++k) {
      step_targets += data[order[k]].response_tokens();
      step_tokens += static_cast<int64_t>(data[order[k]].tokens.size());
    }
    std::vector<double> step_costs;
    for (int64_t k = first; k < first + count; ++k) step_costs.push_back(sequence_cost(data[order[k]].tokens.size()));
    const std::vector<int64_t> mine = train_rank_share(step_costs, world.rank, world.size);
    const int64_t n_mine = static_cast<int64_t>(mine.size());
    const int64_t n_micro = (n_mine + options.micro_batch - 1) / options.micro_batch;
    double ce_local = 0;
    if (n_micro == 0) {
      // No sequence for this rank this step: a zero loss still fills every bucket.
      buckets.set_sync(true);
      at::Tensor zero;
      for (const auto& p : params) zero = zero.defined() ? zero + p.sum() * 0 : p.sum() * 0;
      zero.backward();
    }
    for (int64_t mb = 0; mb < n_micro; ++mb) {
      std::vector<const SftExample*> batch;
      const int64_t b0 = mb * options.micro_batch;
      for (int64_t k = b0; k < std::min(n_mine, b0 + options.micro_batch); ++k)
        batch.push_back(&data[order[first + mine[k]]]);
      buckets.set_sync(mb == n_micro - 1);
      at::Tensor ce = micro_batch_loss(model, target, batch, device);
      at::Tensor loss = ce / static_cast<double>(step_targets);
      if (target.aux_loss) loss = loss + target.aux_loss() * (static_cast<double>(batch.size()) / count);
      loss.backward();
      ce_local += ce.item<double>();
    }
    buckets.finish();
    at::Tensor ce_sum = torch::full({1}, ce_local, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    comm.allreduce_sum(ce_sum);
    const double loss = ce_sum.item<double>() / static_cast<double>(step_targets);
    const double grad_norm = clip_grad_norm(params, options.max_grad_norm);
    // The loss and the summed gradients are the same on every rank, so every rank stops
    // here together, before a non-finite value reaches the weights or a checkpoint.
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) train_stop_non_finite(target, step + 1, loss, options);
    const double lr = schedule.at(step);
    opt.step(lr);
    opt.zero_grad();
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    const double tps = static_cast<double>(step_tokens) / std::max(1e-9, seconds_now() - t0);
    const int64_t done = step + 1;
    auto& m = result.metrics;
    m.step.push_back(done);
    m.loss.push_back(static_cast<float>(loss));
    m.lr.push_back(static_cast<float>(lr));
    m.grad_norm.push_back(static_cast<float>(grad_norm));
    m.tokens_per_s.push_back(static_cast<float>(tps));
    if (done == start + 1 || done == total || (options.log_every > 0 && done % options.log_every == 0)) {
      std::string line = "step " + std::to_string(done) + "/" + std::to_string(total) + " loss " +
                         format_metric(loss, "%.5f") + " lr " + format_metric(lr, "%.3e") + " grad_norm " +
                         format_metric(grad_norm, "%.4f") + " tokens/s " + format_metric(tps, "%.0f");
      if (peak > 0) {
        const double mfu = 6.0 * static_cast<double>(options.model_params) * tps / (peak * world.size);
        line += " MFU " + format_metric(100 * mfu, "%.1f") + "%";
      }
      log_info(line);
    }
    progress.set(done);
    const int sig = train_signal_pending();
    const bool stop = comm.any(sig != 0) && done < total;
    if ((options.checkpoint_every > 0 && done % options.checkpoint_every == 0 && done < total) || stop) save(done);
    if (stop) {
      result.interrupted = true;
      result.signal = sig;
      result.steps = done;
      log_info("stopping at step ", done, " on a signal: checkpointed; exit code ", kExitCheckpointed,
               " asks to requeue");
      train_signals_restore();
      if (target.set_training) target.set_training(false);
      return result;
    }
  }
  progress.finish();
  train_signals_restore();
  if (target.set_training) target.set_training(false);
  for (const auto& [name, p] : target.params) {  // the last optimizer step had no loss after it
    if (!torch::isfinite(p.detach()).all().item<bool>())
      throw std::runtime_error("training ended with non-finite values in '" + name +
                               "' after the last step; nothing was written under the output name");
  }
  result.steps = total;
  return result;
}

}  // namespace kmoe
