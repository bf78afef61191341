// Test tool for the training script tests: writes the tiny random LLaMA of
// tests/unit/tiny_llama.h as a HF folder, and computes kmoe's logits of that model with a
// PEFT adapter applied, for comparison with PEFT itself.
//   kmoe_tiny_model write DIR
//   kmoe_tiny_model logits MODEL ADAPTER_DIR OUT.f32 ID...   (OUT: [len, vocab] float32, raw)
//   kmoe_tiny_model prompt-logits MODEL PROMPT_DIR OUT.f32 ID...  (a soft prompt instead)
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "data/formats/model_files.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/peft_prompt.h"
#include "model/llama.h"
#include "model/lora.h"
#include "tiny_llama.h"

int main(int argc, char** argv) {
  using namespace kmoe;
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "write" && argc == 3) {
      std::filesystem::create_directories(argv[2]);
      testing::write_tiny_hf_model(argv[2], 258);
      // transformers wants the {"format": "pt"} metadata HF's own writer adds
      const std::string st = std::string(argv[2]) + "/model.safetensors";
      std::map<std::string, at::Tensor> w;
      {
        SafetensorsFile f(st);
        for (const auto& [name, e] : f.entries()) w[name] = f.tensor(name);
      }
      safetensors_write(st, w, {{"format", "pt"}});
      return 0;
    }
    if (cmd == "logits" && argc > 5) {
      ModelFiles files = model_files_load(argv[2]);
      const LlamaModel model = llama_from_weights(files.config, std::move(files.weights), torch::kCPU, torch::kFloat32);
      LoraSet lora(files.config);
      lora.add(peft_adapter_load(argv[3], files.config, "a"));
      lora.activate("a");
      std::vector<int64_t> ids;
      for (int i = 5; i < argc; ++i) ids.push_back(std::stoll(argv[i]));
      torch::NoGradGuard no_grad;
      const at::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
      const at::Tensor logits = llama_forward(model, input, at::Tensor(), nullptr, &lora)[0].contiguous();
      std::ofstream(argv[4], std::ios::binary)
          .write(reinterpret_cast<const char*>(logits.data_ptr<float>()), logits.numel() * sizeof(float));
      return 0;
    }
    if (cmd == "prompt-logits" && argc > 5) {  // the same with a soft prompt (PEFT prompt tuning)
      ModelFiles files = model_files_load(argv[2]);
      LlamaModel model = llama_from_weights(files.config, std::move(files.weights), torch::kCPU, torch::kFloat32);
      peft_prompt_apply(argv[3], model);
      std::vector<int64_t> ids;
      for (int i = 5; i < argc; ++i) ids.push_back(std::stoll(argv[i]));
      torch::NoGradGuard no_grad;
      const at::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
      const at::Tensor logits = llama_forward(model, input, at::Tensor())[0].contiguous();
      std::ofstream(argv[4], std::ios::binary)
          .write(reinterpret_cast<const char*>(logits.data_ptr<float>()), logits.numel() * sizeof(float));
      return 0;
    }
    std::cerr
        << "usage: kmoe_tiny_model write DIR | logits MODEL ADAPTER OUT ID... | prompt-logits MODEL PROMPT OUT ID...\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kmoe_tiny_model: " << e.what() << "\n";
    return 1;
  }
}
