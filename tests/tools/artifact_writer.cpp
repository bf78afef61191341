// Test tool: writes an artifact from every rank of an MPI job, the way a stage does, and
// can die part-way (SIGKILL on one rank, or an exception on one rank) so the script tests
// can check what a crash leaves behind.
//   kmoe_artifact_writer OUT [--rows N] [--kill-rank R --kill-after-blocks B]
//                            [--throw-rank R]
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "data/store/artifact.h"
#include "runtime/mpi_world.h"

int main(int argc, char** argv) {
  using namespace kmoe;
  auto& w = mpi_world_init(&argc, &argv);
  std::string out;
  int64_t rows = 1000;
  int kill_rank = -1, kill_after = 0, throw_rank = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(argv[++i]); };
    if (a == "--rows")
      rows = std::stoll(next());
    else if (a == "--kill-rank")
      kill_rank = std::stoi(next());
    else if (a == "--kill-after-blocks")
      kill_after = std::stoi(next());
    else if (a == "--throw-rank")
      throw_rank = std::stoi(next());
    else
      out = a;
  }
  try {
    Provenance p;
    p.stage = "embed";
    p.kmoe_version = "test";
    p.git_revision = "test";
    p.options_json = R"({"rows":)" + std::to_string(rows) + "}";
    p.inputs = {{"corpus", "corpus.jsonl", "00ff"}};
    p.world_size = w.size;
    ArtifactWriter writer(w.comm, out, p);
    const int64_t cols = 8, block = 50;
    writer.create_rows("embeddings", rows, cols, StoreType::f16, block);
    const std::vector<std::string> ids = {"doc-0", "doc-1", "doc-2"};
    writer.write_strings("ids", ids);
    const std::vector<int64_t> lines = {1, 2, 3};
    writer.write_int64("lines", {3}, lines.data());
    const std::vector<float> scores = {0.5f, 0.25f, 0.125f};
    writer.write_floats("scores", {3}, scores.data());
    writer.set_attr("embeddings", "pooling", std::string("mean"));
    writer.set_attr("/", "tau", 0.9);
    const Range mine = static_split(rows, w.rank, w.size);
    const int64_t rounds = (static_split(rows, 0, w.size).size() + block - 1) / block;  // rank 0 has the most
    for (int64_t round = 0; round < rounds; ++round) {
      if (w.rank == kill_rank && round == kill_after) {
        std::cerr << "rank " << w.rank << ": killing myself after " << round << " blocks" << std::endl;
        std::raise(SIGKILL);
      }
      if (w.rank == throw_rank && round == 1) throw std::runtime_error("injected failure in block 1");
      const int64_t begin = std::min(mine.begin + round * block, mine.end);
      const int64_t count = std::min(block, mine.end - begin);
      std::vector<float> data(static_cast<size_t>(count * cols));
      for (int64_t r = 0; r < count; ++r)
        for (int64_t c = 0; c < cols; ++c) data[r * cols + c] = static_cast<float>(begin + r) + 0.125f * c;
      writer.write_rows("embeddings", begin, count, data.data());
    }
    writer.commit();
  } catch (const std::exception& e) {
    std::cerr << "kmoe: error on rank " << w.rank << " of " << w.size << ": " << e.what() << std::endl;
    if (w.size > 1) mpi_world_abort(1);
    return 1;
  }
  mpi_world_finalize();
  return 0;
}
