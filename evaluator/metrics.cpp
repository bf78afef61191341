// See metrics.h. F1 per label from counts, not from precision and recall, so a label with no
// prediction at all (precision 0/0) is simply F1 = 0 without a special case.
#include "evaluator/metrics.h"

#include <limits>
#include <map>
#include <stdexcept>

namespace kmoe {

bool answer_format_is_classification(AnswerFormat format) {
  return format == AnswerFormat::choice || format == AnswerFormat::yesno;
}

double macro_f1(const std::vector<std::string>& gold, const std::vector<std::string>& predicted) {
  if (gold.size() != predicted.size()) {
    throw std::invalid_argument("macro_f1: " + std::to_string(gold.size()) + " gold answers but " +
                                std::to_string(predicted.size()) + " predictions");
  }
  struct Counts {
    int64_t tp = 0, fp = 0, fn = 0;
  };
  std::map<std::string, Counts> labels;
  for (const auto& g : gold) labels[g];
  if (labels.empty()) return std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 0; i < gold.size(); ++i) {
    if (predicted[i] == gold[i]) {
      ++labels[gold[i]].tp;
      continue;
    }
    ++labels[gold[i]].fn;
    const auto p = labels.find(predicted[i]);
    if (p != labels.end()) ++p->second.fp;
  }
  double sum = 0;
  for (const auto& [label, c] : labels) sum += 2.0 * c.tp / static_cast<double>(2 * c.tp + c.fp + c.fn);
  return sum / static_cast<double>(labels.size());
}

}  // namespace kmoe
