// kmoe's side of bench/forward_smollm2.sh: forward-pass tokens/s of a model (HF folder or
// GGUF) on a fixed random batch, fp32 on the CPU, no grad. Same protocol as
// forward_reference.py: one warm-up forward, then ITERS timed forwards.
// Usage: kmoe_bench_forward MODEL BATCH SEQ ITERS THREADS   (prints one JSON line)
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/formats/model_files.h"
#include "runtime/mpi_world.h"
#include "model/llama.h"

int main(int argc, char** argv) {
  using namespace kmoe;
  mpi_world_init(&argc, &argv);
  if (argc != 6) {
    std::cerr << "usage: kmoe_bench_forward MODEL BATCH SEQ ITERS THREADS\n";
    return 2;
  }
  const int64_t batch = std::stoll(argv[2]), seq = std::stoll(argv[3]), iters = std::stoll(argv[4]);
  torch::set_num_threads(std::stoi(argv[5]));
  ModelFiles files = model_files_load(argv[1]);
  const LlamaModel model = llama_from_weights(files.config, std::move(files.weights), torch::kCPU, torch::kFloat32);
  auto gen = at::detail::createCPUGenerator(0);
  const auto ids = torch::randint(0, files.config.vocab_size, {batch, seq}, gen, torch::kInt64);
  torch::NoGradGuard no_grad;
  llama_forward(model, ids, {});  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) llama_forward(model, ids, {});
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << nlohmann::json{{"impl", "kmoe"},
                              {"tokens_per_s", batch * seq * iters / elapsed},
                              {"seconds_per_forward", elapsed / iters},
                              {"threads", torch::get_num_threads()}}
                   .dump()
            << std::endl;
  mpi_world_finalize();
  return 0;
}
