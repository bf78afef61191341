// kmoe side of bench/embed_bench.sh: sentences/s of bert_encoder_load(MODEL) on stdin's lines
// (one sentence a line), after a one-batch warm-up. Prints one JSON line. DTYPE (float32 or
// bfloat16) is the encoder's precision; OUT, when given, receives the embeddings as raw
// little-endian float32 [sentences, dim].
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "data/encoders/bert_encoder.h"
#include "runtime/cpu_env.h"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr, "usage: kmoe_bench_embed MODEL_FOLDER BATCH THREADS [DTYPE [OUT]] < sentences\n");
    return 2;
  }
  kmoe::cpu_env_reexec(argv);  // as kmoe does (runtime/cpu_env.h)
  kmoe::BertEncoderOptions options;
  options.batch_size = std::stoll(argv[2]);
  options.threads = std::stoi(argv[3]);
  if (argc >= 5) options.dtype = argv[4];
  std::vector<std::string> texts;
  for (std::string line; std::getline(std::cin, line);) texts.push_back(line);
  const auto encoder = kmoe::bert_encoder_load(argv[1], options);
  encoder->encode(
      std::vector<std::string>(texts.begin(), texts.begin() + std::min<size_t>(texts.size(), options.batch_size)));
  const auto start = std::chrono::steady_clock::now();
  const at::Tensor out = encoder->encode(texts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (argc == 6) {
    const at::Tensor f = out.to(torch::kFloat32).contiguous();
    std::ofstream(argv[5], std::ios::binary).write(reinterpret_cast<const char*>(f.data_ptr<float>()), f.nbytes());
  }
  std::printf(
      "{\"sentences\": %zu, \"seconds\": %.3f, \"sentences_per_s\": %.1f, \"threads\": %d, \"dim\": %lld, "
      "\"dtype\": \"%s\"}\n",
      texts.size(), seconds, texts.size() / seconds, options.threads, static_cast<long long>(out.size(1)),
      options.dtype.c_str());
  return 0;
}
