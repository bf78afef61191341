#include "runtime/unit_journal.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "runtime/mpi_world.h"
#include "temp_dir.h"

namespace kmoe {
namespace {

Provenance provenance(const std::string& kshot_hash) {
  Provenance p;
  p.stage = "score";
  p.options_json = R"({"batch":8})";
  p.inputs = {{"kshot", "k.jsonl", kshot_hash}};
  return p;
}

TEST(UnitJournal, CommittedUnitsSurviveAReopenAndReadBack) {
  testing::TempDir dir;
  const std::string final_path = dir / "scores.h5";
  const std::string fp = provenance_fingerprint(provenance("aa"));
  {
    UnitJournal j(mpi_world().comm, final_path, fp);
    EXPECT_TRUE(j.done_units().empty());
    j.commit(3, {{"nll", torch::tensor({1.5f, 2.5f})}, {"correct", torch::tensor({1, 0}, torch::kInt64)}});
    j.commit(0, {{"nll", torch::tensor({0.5f})}});
    EXPECT_TRUE(j.done(3));
  }  // the job is killed here; a re-run opens the journal again
  UnitJournal again(mpi_world().comm, final_path, fp);
  EXPECT_EQ(again.done_units(), (std::set<int64_t>{0, 3}));
  EXPECT_FALSE(again.done(1));
  const auto unit3 = again.read(3);
  EXPECT_TRUE(torch::equal(unit3.at("nll"), torch::tensor({1.5f, 2.5f})));
  EXPECT_TRUE(torch::equal(unit3.at("correct"), torch::tensor({1, 0}, torch::kInt64)));
  EXPECT_THROW(again.read(1), std::runtime_error);
  again.remove();
  EXPECT_FALSE(std::filesystem::exists(final_path + ".units"));
}

TEST(UnitJournal, AJournalFromOtherInputsIsDiscarded) {
  testing::TempDir dir;
  const std::string final_path = dir / "scores.h5";
  {
    UnitJournal j(mpi_world().comm, final_path, provenance_fingerprint(provenance("aa")));
    j.commit(0, {{"x", torch::ones({1})}});
  }
  EXPECT_NE(provenance_fingerprint(provenance("aa")), provenance_fingerprint(provenance("bb")));
  UnitJournal other(mpi_world().comm, final_path, provenance_fingerprint(provenance("bb")));
  EXPECT_TRUE(other.done_units().empty());
  EXPECT_FALSE(std::filesystem::exists(final_path + ".units/unit-000000000.safetensors"));
}

TEST(UnitJournal, ACorruptUnitIsRedoneAndForceStartsOver) {
  testing::TempDir dir;
  const std::string final_path = dir / "scores.h5";
  const std::string fp = provenance_fingerprint(provenance("aa"));
  {
    UnitJournal j(mpi_world().comm, final_path, fp);
    j.commit(0, {{"x", torch::ones({64})}});
    j.commit(1, {{"x", torch::ones({64})}});
  }
  const std::string unit1 = final_path + ".units/unit-000000001.safetensors";
  std::filesystem::resize_file(unit1, std::filesystem::file_size(unit1) / 2);  // a torn disk block
  {
    UnitJournal again(mpi_world().comm, final_path, fp);
    EXPECT_EQ(again.done_units(), std::set<int64_t>{0});
    EXPECT_FALSE(std::filesystem::exists(unit1));
  }
  UnitJournal forced(mpi_world().comm, final_path, fp, /*fresh=*/true);
  EXPECT_TRUE(forced.done_units().empty());
}

TEST(UnitJournal, AHalfWrittenUnitIsNotCountedAsDone) {
  testing::TempDir dir;
  const std::string final_path = dir / "scores.h5";
  const std::string fp = provenance_fingerprint(provenance("aa"));
  { UnitJournal j(mpi_world().comm, final_path, fp); }
  // What a kill in the middle of safetensors_write leaves behind.
  std::ofstream(final_path + ".units/unit-000000007.safetensors.partial") << "garbage";
  UnitJournal j(mpi_world().comm, final_path, fp);
  EXPECT_FALSE(j.done(7));
  EXPECT_TRUE(j.done_units().empty());
}

}  // namespace
}  // namespace kmoe
