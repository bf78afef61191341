// kmoe side of bench/embed_bench.sh: sentences/s of bert_encoder_load(MODEL) on stdin's lines
// (one sentence a line), after a one-batch warm-up. Prints one JSON line.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "data/encoders/bert_encoder.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: kmoe_bench_embed MODEL_FOLDER BATCH THREADS < sentences\n");
    return 2;
  }
  kmoe::BertEncoderOptions options;
  options.batch_size = std::stoll(argv[2]);
  options.threads = std::stoi(argv[3]);
  std::vector<std::string> texts;
  for (std::string line; std::getline(std::cin, line);) texts.push_back(line);
  const auto encoder = kmoe::bert_encoder_load(argv[1], options);
  encoder->encode(
      std::vector<std::string>(texts.begin(), texts.begin() + std::min<size_t>(texts.size(), options.batch_size)));
  const auto start = std::chrono::steady_clock::now();
  const at::Tensor out = encoder->encode(texts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"sentences\": %zu, \"seconds\": %.3f, \"sentences_per_s\": %.1f, \"threads\": %d, \"dim\": %lld}\n",
              texts.size(), seconds, texts.size() / seconds, options.threads, static_cast<long long>(out.size(1)));
  return 0;
}
