#include "data/formats/moe_file.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "data/store/artifact_tensor.h"
#include "data/formats/peft_adapter.h"
#include "runtime/mpi_world.h"
#include "temp_dir.h"
#include "tiny_llama.h"
#include "tests/unit/error_of.h"

namespace kmoe {
namespace {

LoraAdapter file_expert(const std::string& name, double alpha, bool rslora, int64_t r = 4) {
  LoraConfig c;
  c.r = r;
  c.lora_alpha = alpha;
  c.use_rslora = rslora;
  c.target_modules = {LinearModule::v_proj, LinearModule::down_proj};
  c.layers_to_transform = {0, 2};
  return lora_adapter_init(name, c, testing::tiny_llama_config(16, 3), 0.5);
}

Provenance provenance() {
  Provenance p;
  p.stage = "train";
  p.kmoe_version = "0.1.0";
  p.options_json = "{}";
  return p;
}

TEST(MoeFile, WriteThenReadGivesIdenticalDeltas) {
  testing::TempDir dir;
  const std::string path = dir / "moe.h5";
  MoeConfig mc;
  mc.top_k = 2;
  mc.aux_loss_coef = 0.02;
  mc.train_experts = false;
  mc.expert_dropout = 0.1;
  const MoeLora moe(testing::tiny_llama_config(16, 3), {file_expert("x", 8, false), file_expert("y", 0.3, true), file_expert("z", 5, false)}, mc, 21);
  {
    ArtifactWriter w(mpi_world().comm, path, provenance());
    moe_write(w, moe);
    w.commit();
  }
  const MoeLora back = moe_read(path, testing::tiny_llama_config(16, 3));
  EXPECT_EQ(back.expert_count(), 3);
  EXPECT_EQ(back.keys(), moe.keys());
  EXPECT_EQ(back.config().top_k, 2);
  EXPECT_DOUBLE_EQ(back.config().aux_loss_coef, 0.02);
  EXPECT_FALSE(back.config().train_experts);
  EXPECT_DOUBLE_EQ(back.config().expert_dropout, 0.1);
  for (int64_t e = 0; e < 3; ++e) {
    EXPECT_EQ(back.experts()[e].name, moe.experts()[e].name);
    EXPECT_EQ(lora_scale(back.experts()[e].config), lora_scale(moe.experts()[e].config));
  }
  const at::Tensor x = torch::randn({2, 3, 24});
  const at::Tensor h = torch::randn({2, 3, 16});
  for (const LoraKey& key : moe.keys()) {
    const at::Tensor& in = key.second == LinearModule::down_proj ? x : h;
    EXPECT_TRUE(torch::equal(back.delta(key.first, key.second, in), moe.delta(key.first, key.second, in)));
  }
  // The layout h5py users see.
  ArtifactReader r(path);
  EXPECT_EQ(r.read_strings("moe/keys"), (std::vector<std::string>{"layers.0.v_proj", "layers.0.down_proj",
                                                                  "layers.2.v_proj", "layers.2.down_proj"}));
  EXPECT_EQ(r.shape("moe/layers.2.down_proj/lora_A"), (std::vector<int64_t>{3, 4, 24}));
  EXPECT_EQ(r.shape("moe/layers.2.down_proj/lora_B"), (std::vector<int64_t>{3, 16, 4}));
  EXPECT_EQ(r.shape("moe/layers.0.v_proj/router"), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(r.attr_string("moe", "layers"), "[0,2]");
  EXPECT_EQ(r.attr_string("moe", "expert_use_rslora"), "[false,true,false]");
}

// Writes the documented layout by hand, leaving out `skip`.
void write_by_hand(const std::string& path, const std::string& skip) {
  ArtifactWriter w(mpi_world().comm, path, provenance());
  w.write_strings("moe/keys", {"layers.0.v_proj", "layers.0.down_proj", "layers.2.v_proj", "layers.2.down_proj"});
  w.write_strings("moe/expert_names", {"p", "q"});
  for (const std::string key : {"layers.0.v_proj", "layers.2.v_proj", "layers.0.down_proj", "layers.2.down_proj"}) {
    const bool down = key.find("down") != std::string::npos;
    const int64_t in = down ? 24 : 16, out = down ? 16 : 8;
    for (const auto& [name, t] :
         std::vector<std::pair<std::string, at::Tensor>>{{"router", torch::randn({2, in})},
                                                         {"lora_A", torch::randn({2, 4, in})},
                                                         {"lora_B", torch::randn({2, out, 4})}}) {
      const std::string full = "moe/" + key + "/" + name;
      if (full != skip) artifact_write_tensor(w, full, t);
    }
  }
  w.set_attr("moe", "top_k", int64_t{1});
  w.set_attr("moe", "aux_loss_coef", 0.0);
  w.set_attr("moe", "train_experts", int64_t{1});
  w.set_attr("moe", "r", int64_t{4});
  w.set_attr("moe", "expert_alpha", std::string("[8, 16.5]"));
  w.set_attr("moe", "expert_use_rslora", std::string("[false, true]"));
  w.set_attr("moe", "target_modules", std::string(R"(["v_proj", "down_proj"])"));
  w.set_attr("moe", "layers", std::string("[0, 2]"));
  w.commit();
}

TEST(MoeFile, ReadsTheLayoutWrittenByHandAndNamesAMissingTensor) {
  testing::TempDir dir;
  write_by_hand(dir / "ok.h5", "");
  const MoeLora moe = moe_read(dir / "ok.h5", testing::tiny_llama_config(16, 3));
  EXPECT_EQ(moe.expert_count(), 2);
  EXPECT_EQ(moe.config().top_k, 1);
  EXPECT_DOUBLE_EQ(lora_scale(moe.experts()[1].config), 16.5 / 2);

  write_by_hand(dir / "missing.h5", "moe/layers.2.v_proj/lora_B");
  std::string e = error_of([&] { moe_read(dir / "missing.h5", testing::tiny_llama_config(16, 3)); });
  EXPECT_NE(e.find(dir / "missing.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("missing tensor /moe/layers.2.v_proj/lora_B"), std::string::npos) << e;

  ModelConfig wider = testing::tiny_llama_config(16, 3);
  wider.hidden_size = 20;
  wider.head_dim = 5;
  e = error_of([&] { moe_read(dir / "ok.h5", wider); });
  EXPECT_NE(e.find("tensor /moe/layers.0.v_proj/router has shape [2, 16], expected [2, 20]"), std::string::npos) << e;

  ModelConfig shallow = testing::tiny_llama_config(16, 3);
  shallow.num_hidden_layers = 2;
  e = error_of([&] { moe_read(dir / "ok.h5", shallow); });
  EXPECT_NE(e.find("layer 2 but the base has 2 layers"), std::string::npos) << e;
}

TEST(MoeFile, LoadsExpertsFromPeftFoldersAndRefusesMisfits) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "bank");
  peft_adapter_save(file_expert("ignored", 8, false), dir / "bank/first");
  peft_adapter_save(file_expert("ignored", 4, true), dir / "bank/second");
  peft_adapter_save(file_expert("ignored", 8, false, 2), dir / "bank/rank2");
  const auto experts = moe_load_experts({dir / "bank/first", dir / "bank/second"}, testing::tiny_llama_config(16, 3));
  ASSERT_EQ(experts.size(), 2u);
  EXPECT_EQ(experts[0].name, "first");
  EXPECT_EQ(experts[1].name, "second");
  EXPECT_TRUE(experts[1].config.use_rslora);
  const std::string e = error_of([&] { moe_load_experts({dir / "bank/first", dir / "bank/rank2"}, testing::tiny_llama_config(16, 3)); });
  EXPECT_NE(e.find("expert 'rank2' has r = 2, expert 'first' has r = 4"), std::string::npos) << e;
}

}  // namespace
}  // namespace kmoe
