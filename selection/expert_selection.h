// K-shot expert selection (METHOD.md §1.1): rank the bank by reasoning perplexity and
// accuracy, keep the M best as candidates, and pick the N-subset that balances those ranks
// against the diversity of the members' weight deltas. Ranks are always distinct (ties broken
// by the other signal, then by name) so a result never depends on input order. The weight
// cosine is computed from the Gram matrices of the LoRA factors, never from B·A itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/lora.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// Which ranks enter an adapter's combined rank R (the paper's ablation).
enum class RankSignals { both, accuracy, perplexity };
RankSignals rank_signals_parse(const std::string& name);  // both|accuracy|perplexity, else UsageError
const char* rank_signals_name(RankSignals signals);

// R_P: 1 for the smallest ppl_sum; ties by higher accuracy, then by name. One entry per adapter.
std::vector<int64_t> rank_by_perplexity(const std::vector<double>& ppl_sum, const std::vector<double>& acc,
                                        const std::vector<std::string>& names);
// R_A: 1 for the highest accuracy; ties by lower ppl_sum, then by name.
std::vector<int64_t> rank_by_accuracy(const std::vector<double>& ppl_sum, const std::vector<double>& acc,
                                      const std::vector<std::string>& names);
// R = R_P + R_A, R_A or R_P depending on `signals`.
int64_t rank_combined(int64_t r_p, int64_t r_a, RankSignals signals);
// The m adapters with the smallest R, best first; ties by smaller R_A, then by name.
std::vector<int64_t> candidates_pick(const std::vector<int64_t>& r_p, const std::vector<int64_t>& r_a,
                                     const std::vector<std::string>& names, RankSignals signals, int64_t m);

// An adapter folder read without a base config: every (layer, module) found in
// adapter_model.safetensors, with the config from adapter_config.json. Errors name the
// folder and the tensor.
LoraAdapter lora_adapter_read(const std::string& dir, const std::string& name);

// <scale_a·B_a A_a, scale_b·B_b A_b>_F = scale_a·scale_b·sum((B_aᵀ B_b) ∘ (A_a A_bᵀ)), in float64.
// A [r, in], B [out, r]; the ranks of a and b may differ.
double lora_delta_dot(const LoraWeights& a, double scale_a, const LoraWeights& b, double scale_b);
// Throws std::invalid_argument naming both adapters unless they adapt the same (layer,
// module) pairs with deltas of the same [out, in] shapes (their ranks may differ).
void lora_adapters_check_comparable(const LoraAdapter& a, const LoraAdapter& b);
// Mean over the adapted (layer, module) pairs of cos(ΔW_a, ΔW_b). A zero delta has no
// direction: std::invalid_argument naming the adapter and the module.
double lora_delta_cosine(const LoraAdapter& a, const LoraAdapter& b);
// [M, M] row-major cosine matrix with 1 on the diagonal.
std::vector<double> lora_cosine_matrix(const std::vector<LoraAdapter>& adapters);

int64_t binomial(int64_t m, int64_t n);

// Every n-subset of m candidates in lexicographic order, scored. R_D ranks subsets by mean
// pairwise cosine ascending (= Omega descending where the mean is positive; stays meaningful
// when it is not), ties by enumeration order. score = Σ_members R + (diversity ? R_D : 0);
// the chosen subset has the smallest score, ties by smaller R_D (by enumeration order
// without diversity). n = 1 has no pairs: mean cosine 0 for every subset.
struct SubsetTable {
  int64_t m = 0, n = 0, count = 0;
  std::vector<int64_t> members;      // [count, n] candidate indices, ascending within a row
  std::vector<double> mean_cosine;   // [count]
  std::vector<double> omega;         // [count] 1 / mean_cosine (inf at 0, negative below)
  std::vector<int64_t> rank_d;       // [count] R_D, 1..count
  std::vector<int64_t> member_rank;  // [count] Σ_members R
  std::vector<int64_t> score;        // [count]
  int64_t chosen = -1;               // row of the chosen subset
};
// cosine [m, m] row-major; candidate_rank [m] = R of each candidate.
SubsetTable subsets_score(const std::vector<double>& cosine, const std::vector<int64_t>& candidate_rank, int64_t n,
                          bool diversity);

// `kmoe select-experts`: scores.h5 -> experts.h5 (candidates, cosines, every subset's score,
// the chosen N).
struct SelectExpertsOptions {
  std::string scores;                 // scores.h5 written by kmoe score (required)
  std::string output = "experts.h5";  // experts.h5 to write
  int64_t m = 8;                      // candidates kept by R_P + R_A
  int64_t n = 4;                      // experts chosen among the candidates
  std::string signals = "both";       // ranks entering R: both, accuracy (R_A) or perplexity (R_P)
  bool no_diversity = false;          // choose by member ranks only (no R_D)
  bool force = false;                 // run even if the artifact is complete
};
StageOutcome select_experts_stage(const MpiWorld& world, const SelectExpertsOptions& options);

}  // namespace kmoe
