// See report.h. Each section reads one artifact into plain vectors, appends its Markdown and
// renders its plots; sections share nothing but the output stream and the list of plots
// written, so a new artifact is one more function. Numbers are printed from the artifacts
// as stored (float32), with fixed precision so that two reports of one run are identical.
#include "evaluator/report.h"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "data/store/artifact.h"
#include "evaluator/expert_drift.h"
#include "evaluator/png_plot.h"
#include "evaluator/report_compare.h"
#include "evaluator/report_html.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxPlotBars = 60;  // a bar chart taller than this is unreadable

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string general(double v) {
  if (!std::isfinite(v)) return fixed(v, 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Markdown table cells must not contain '|' or line breaks.
std::string cell(std::string s) {
  for (char& c : s) {
    if (c == '|' || c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

void table_header(std::ostream& md, const std::vector<std::string>& columns) {
  md << "|";
  for (const auto& c : columns) md << " " << c << " |";
  md << "\n|";
  for (size_t i = 0; i < columns.size(); ++i) md << (i == 0 ? " --- |" : " ---: |");
  md << "\n";
}

void table_row(std::ostream& md, const std::vector<std::string>& cells) {
  md << "|";
  for (const auto& c : cells) md << " " << cell(c) << " |";
  md << "\n";
}

// q-quantile (linear interpolation) of finite values; NaN when there are none.
double quantile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(pos);
  return i + 1 < v.size() ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}

double mean_finite(const std::vector<double>& v) {
  double sum = 0;
  int64_t n = 0;
  for (double x : v) {
    if (std::isfinite(x)) sum += x, ++n;
  }
  return n ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

std::vector<double> to_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// One artifact opened for a section, with the checks every section needs.
struct Artifact {
  std::string label;  // e.g. "scores.h5"
  ArtifactReader reader;
  Artifact(const std::string& dir, const std::string& name) : label(name), reader((fs::path(dir) / name).string()) {}

  void need(const std::string& name) const {
    if (!reader.has(name)) throw std::runtime_error(reader.path() + ": missing dataset /" + name);
  }
  std::vector<double> floats(const std::string& name) const {
    need(name);
    return to_double(reader.read_floats(name));
  }
  std::vector<int64_t> ints(const std::string& name) const {
    need(name);
    return reader.read_int64(name);
  }
  std::vector<std::string> strings(const std::string& name) const {
    need(name);
    return reader.read_strings(name);
  }
  // Throws unless dataset `name` has `expected` entries along its first axis.
  void expect_rows(const std::string& name, size_t got, size_t expected, const std::string& of) const {
    if (got != expected) {
      throw std::runtime_error(reader.path() + ": /" + name + " has " + std::to_string(got) + " entries but " + of +
                               " has " + std::to_string(expected));
    }
  }
  std::string attr(const std::string& key, const std::string& fallback) const {
    if (!reader.has_attr("/", key)) return fallback;
    try {
      return reader.attr_string("/", key);
    } catch (const std::runtime_error&) {
    }
    // Numbers are read as double: HDF5 would silently truncate a float read as an integer.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", reader.attr_double("/", key));
    return buf;
  }
};

// The Markdown and the plots of one report, kept in memory until every section has read
// its artifact, so that a malformed artifact changes no file.
struct Report {
  std::string dir;
  std::ostringstream md;
  std::vector<std::pair<std::string, Image>> plots;
  std::vector<std::string> stale;  // plots of omitted sections, removed on commit

  void plot(const std::string& name, Image image, const std::string& alt) {
    plots.emplace_back(name, std::move(image));
    md << "\n![" << alt << "](" << name << ")\n";
  }
  bool has(const std::string& name) const { return fs::exists(fs::path(dir) / name); }
  void missing(const std::string& artifact, const std::string& what, const std::vector<std::string>& plot_names) {
    md << "_No " << artifact << " in the run directory: " << what << " omitted._\n";
    stale.insert(stale.end(), plot_names.begin(), plot_names.end());
  }
};

// What experts.h5 says about the rows of scores.h5; empty vectors when it is absent.
struct ExpertsSummary {
  std::vector<int64_t> all_r_p, all_r_a;  // per scores.h5 row, -1 for base and skipped
  std::set<std::string> chosen;           // adapter names
};

ExpertsSummary experts_summary(const Report& rep) {
  ExpertsSummary s;
  if (!rep.has("experts.h5")) return s;
  const Artifact a(rep.dir, "experts.h5");
  if (a.reader.has("all_R_P")) s.all_r_p = a.ints("all_R_P");
  if (a.reader.has("all_R_A")) s.all_r_a = a.ints("all_R_A");
  for (const auto& n : a.strings("chosen_names")) s.chosen.insert(n);
  return s;
}

void section_scores(Report& rep, const ExpertsSummary& ex) {
  rep.md << "\n## Adapter scores (scores.h5)\n\n";
  if (!rep.has("scores.h5")) return rep.missing("scores.h5", "adapter scores", {"adapter_scores.png"});
  const Artifact a(rep.dir, "scores.h5");
  const auto names = a.strings("adapters");
  if (names.empty()) throw std::runtime_error(a.reader.path() + ": /adapters is empty");
  const auto acc = a.floats("acc");
  a.expect_rows("acc", acc.size(), names.size(), "/adapters");
  std::vector<int64_t> skipped(names.size(), 0);
  if (a.reader.has("skipped")) skipped = a.ints("skipped");
  a.expect_rows("skipped", skipped.size(), names.size(), "/adapters");
  // Mean reasoning perplexity per adapter over its samples: /ppl_reasoning [adapters, samples].
  std::vector<double> ppl(names.size(), std::numeric_limits<double>::quiet_NaN());
  int64_t samples = 0;
  if (a.reader.has("ppl_reasoning")) {
    const auto shape = a.reader.shape("ppl_reasoning");
    if (shape.size() != 2 || shape[0] != static_cast<int64_t>(names.size())) {
      throw std::runtime_error(a.reader.path() + ": /ppl_reasoning is not [adapters, samples]");
    }
    samples = shape[1];
    const auto v = a.floats("ppl_reasoning");
    for (size_t i = 0; i < names.size(); ++i) {
      double sum = 0;
      int64_t n = 0;
      for (int64_t k = 0; k < samples; ++k) {
        const double x = v[i * samples + k];
        if (std::isfinite(x)) sum += x, ++n;
      }
      if (n) ppl[i] = sum / static_cast<double>(n);
    }
  }
  // Option log-likelihood accuracies: present when the K-shot examples have choices.
  std::vector<double> acc_ll, acc_ll_norm;
  if (a.reader.has("acc_ll") && a.reader.has("acc_ll_norm")) {
    acc_ll = a.floats("acc_ll"), acc_ll_norm = a.floats("acc_ll_norm");
    a.expect_rows("acc_ll", acc_ll.size(), names.size(), "/adapters");
    a.expect_rows("acc_ll_norm", acc_ll_norm.size(), names.size(), "/adapters");
  }
  const bool ll = std::any_of(acc_ll.begin(), acc_ll.end(), [](double v) { return std::isfinite(v); });
  const bool ranks = ex.all_r_p.size() == names.size() && ex.all_r_a.size() == names.size();
  rep.md
      << names.size() << " rows (the base model and " << names.size() - 1 << " adapters) scored on " << samples
      << " K-shot examples. acc: accuracy of the answer extracted from the greedy reply; PPL: mean reasoning perplexity"
      << (ll ? "; acc_ll, acc_ll_norm: accuracy of the option with the highest (length-normalised) log-likelihood" : "")
      << (ranks ? "; R_A, R_P: ranks among the bank (1 = best)" : "") << ".\n\n";
  std::vector<std::string> columns = {"adapter", "acc"};
  if (ll) columns.insert(columns.end(), {"acc_ll", "acc_ll_norm"});
  columns.push_back("reasoning PPL");
  if (ranks) columns.insert(columns.end(), {"R_A", "R_P"});
  columns.push_back("chosen");
  table_header(rep.md, columns);
  auto rank_text = [](int64_t r) { return r < 0 ? std::string("-") : std::to_string(r); };
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<std::string> row = {names[i], skipped[i] ? "skipped" : fixed(acc[i], 4)};
    if (ll) row.insert(row.end(), {fixed(acc_ll[i], 4), fixed(acc_ll_norm[i], 4)});
    row.push_back(fixed(ppl[i], 3));
    if (ranks) row.insert(row.end(), {rank_text(ex.all_r_a[i]), rank_text(ex.all_r_p[i])});
    row.push_back(ex.chosen.count(names[i]) ? "yes" : "");
    table_row(rep.md, row);
  }
  // The plot: every row up to kMaxPlotBars, else the base, the chosen and the most accurate.
  std::vector<size_t> shown(names.size());
  std::iota(shown.begin(), shown.end(), 0);
  if (shown.size() > kMaxPlotBars) {
    std::stable_sort(shown.begin() + 1, shown.end(), [&](size_t x, size_t y) {
      const bool cx = ex.chosen.count(names[x]), cy = ex.chosen.count(names[y]);
      if (cx != cy) return cx;
      const double ax = std::isnan(acc[x]) ? -1.0 : acc[x], ay = std::isnan(acc[y]) ? -1.0 : acc[y];
      return ax > ay;
    });
    shown.resize(kMaxPlotBars);
    std::sort(shown.begin(), shown.end());
    rep.md << "\nThe plot shows " << kMaxPlotBars << " of " << names.size()
           << " rows: the base, the chosen experts and the most accurate adapters.\n";
  }
  BarChart acc_chart, ppl_chart;
  acc_chart.title = "accuracy";
  acc_chart.value_label = "K-shot accuracy";
  acc_chart.highlight_label = ppl_chart.highlight_label = ex.chosen.empty() ? "" : "chosen expert";
  ppl_chart.title = "reasoning perplexity";
  ppl_chart.value_label = "mean reasoning PPL (lower is better; axis not from 0)";
  ppl_chart.from_zero = false;  // perplexities of one base differ by little: from 0 the differences vanish
  for (size_t i : shown) {
    for (BarChart* c : {&acc_chart, &ppl_chart}) {
      c->labels.push_back(names[i]);
      c->highlight.push_back(ex.chosen.count(names[i]) > 0);
    }
    acc_chart.values.push_back(skipped[i] ? std::numeric_limits<double>::quiet_NaN() : acc[i]);
    ppl_chart.values.push_back(ppl[i]);
  }
  rep.plot("adapter_scores.png", image_hstack({bar_chart_render(acc_chart), bar_chart_render(ppl_chart)}),
           "accuracy and reasoning perplexity per adapter; chosen experts in orange");
}

// Long because it writes one section of the report top to bottom (table, then plot); the
// pieces only make sense in that order.
void section_experts(Report& rep) {
  rep.md << "\n## Chosen experts (experts.h5)\n\n";
  if (!rep.has("experts.h5")) return rep.missing("experts.h5", "expert selection", {"experts.png"});
  const Artifact a(rep.dir, "experts.h5");
  const auto cand = a.strings("candidates");
  const auto r_p = a.ints("R_P"), r_a = a.ints("R_A"), r = a.ints("R");
  for (const auto& [name, size] :
       {std::pair{"R_P", r_p.size()}, std::pair{"R_A", r_a.size()}, std::pair{"R", r.size()}}) {
    a.expect_rows(name, size, cand.size(), "/candidates");
  }
  auto chosen = a.ints("chosen");
  std::set<int64_t> chosen_set(chosen.begin(), chosen.end());
  for (int64_t c : chosen) {
    if (c < 0 || c >= static_cast<int64_t>(cand.size())) {
      throw std::runtime_error(a.reader.path() + ": /chosen holds " + std::to_string(c) + ", outside the " +
                               std::to_string(cand.size()) + " candidates");
    }
  }
  const size_t n = chosen.size();
  rep.md << "M = " << a.attr("m", std::to_string(cand.size()))
         << " candidates kept by rank (signals: " << a.attr("signals", "both")
         << "), N = " << a.attr("n", std::to_string(n)) << " experts chosen; diversity term R_D "
         << (a.attr("diversity", "1") == "0" ? "off" : "on") << ".\n\n";
  table_header(rep.md, {"candidate", "R_P", "R_A", "R = R_P + R_A", "chosen"});
  for (size_t k = 0; k < cand.size(); ++k) {
    table_row(rep.md, {cand[k], std::to_string(r_p[k]), std::to_string(r_a[k]), std::to_string(r[k]),
                       chosen_set.count(k) ? "yes" : ""});
  }
  // Subsets: members [count, N]; the chosen one is the row equal to /chosen.
  const auto members = a.ints("subsets");
  const auto omega = a.floats("subset_omega"), mean_cos = a.floats("subset_mean_cosine");
  const auto r_d = a.ints("subset_R_D"), score = a.ints("subset_score");
  const size_t count = omega.size();
  if (n == 0 || members.size() != count * n) {
    throw std::runtime_error(a.reader.path() + ": /subsets is not [" + std::to_string(count) + ", " +
                             std::to_string(n) + "]");
  }
  for (const auto& [name, size] : {std::pair{"subset_mean_cosine", mean_cos.size()},
                                   std::pair{"subset_R_D", r_d.size()}, std::pair{"subset_score", score.size()}}) {
    a.expect_rows(name, size, count, "/subset_omega");
  }
  std::sort(chosen.begin(), chosen.end());
  size_t chosen_row = count;
  for (size_t s = 0; s < count && chosen_row == count; ++s) {
    std::vector<int64_t> m(members.begin() + s * n, members.begin() + (s + 1) * n);
    std::sort(m.begin(), m.end());
    if (m == chosen) chosen_row = s;
  }
  auto subset_name = [&](size_t s) {
    std::string out;
    for (size_t j = 0; j < n; ++j) out += (j ? " + " : "") + cand[members[s * n + j]];
    return out;
  };
  if (chosen_row < count) {
    int64_t member_ranks = 0;
    for (int64_t c : chosen) member_ranks += r[c];
    rep.md << "\nChosen subset: **" << cell(subset_name(chosen_row))
           << "**: diversity Omega = " << fixed(omega[chosen_row], 4) << " (mean pairwise weight cosine "
           << fixed(mean_cos[chosen_row], 4) << "), R_D = " << r_d[chosen_row] << " of " << count
           << ", sum of member ranks = " << member_ranks << ", score = " << score[chosen_row]
           << " (lower is better).\n";
  } else {
    rep.md << "\nThe chosen experts are not among the scored subsets.\n";
  }
  // The best subsets by score (ties by R_D), the chosen one always shown.
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return score[x] != score[y] ? score[x] < score[y] : r_d[x] < r_d[y]; });
  const size_t shown = std::min<size_t>(count, 20);
  if (chosen_row < count && std::find(order.begin(), order.begin() + shown, chosen_row) == order.begin() + shown) {
    order[shown - 1] = chosen_row;
  }
  rep.md << "\nBest " << std::min<size_t>(shown, 5) << " of " << count << " subsets:\n\n";
  table_header(rep.md, {"subset", "Omega", "mean cosine", "R_D", "score"});
  for (size_t k = 0; k < std::min<size_t>(shown, 5); ++k) {
    const size_t s = order[k];
    table_row(rep.md, {subset_name(s) + (s == chosen_row ? " (chosen)" : ""), fixed(omega[s], 4), fixed(mean_cos[s], 4),
                       std::to_string(r_d[s]), std::to_string(score[s])});
  }
  BarChart ranks, subsets;
  ranks.title = "candidates";
  ranks.highlight_label = "chosen expert";
  ranks.value_label = "R = R_P + R_A (lower is better)";
  for (size_t k = 0; k < cand.size() && k < kMaxPlotBars; ++k) {
    ranks.labels.push_back(cand[k]);
    ranks.values.push_back(static_cast<double>(r[k]));
    ranks.highlight.push_back(chosen_set.count(k) > 0);
  }
  // Mean cosine rather than Omega = 1 / mean cosine, which is unbounded near zero.
  subsets.title = "best subsets";
  subsets.highlight_label = "chosen subset";
  subsets.value_label = "mean pairwise weight cosine (lower = more diverse)";
  for (size_t k = 0; k < shown; ++k) {
    const size_t s = order[k];
    subsets.labels.push_back(subset_name(s));
    subsets.values.push_back(mean_cos[s]);
    subsets.highlight.push_back(s == chosen_row);
  }
  rep.plot("experts.png", image_hstack({bar_chart_render(ranks), bar_chart_render(subsets)}),
           "candidate ranks and the mean weight cosine of the best subsets; chosen in orange");
}

void section_data(Report& rep) {
  rep.md << "\n## Data selection (data_selection.h5)\n\n";
  if (!rep.has("data_selection.h5")) {
    return rep.missing("data_selection.h5", "data selection", {"similarity_hist.png"});
  }
  const Artifact a(rep.dir, "data_selection.h5");
  const auto scores = a.floats("scores");
  const auto selected = a.ints("selected");
  const auto dropped = a.ints("dropped");
  std::vector<double> kept;
  for (int64_t row : selected) {
    if (row < 0 || row >= static_cast<int64_t>(scores.size())) {
      throw std::runtime_error(a.reader.path() + ": /selected holds row " + std::to_string(row) + ", outside the " +
                               std::to_string(scores.size()) + " scored rows");
    }
    kept.push_back(scores[row]);
  }
  const int64_t rows = static_cast<int64_t>(scores.size());
  const int64_t unvisited = rows - static_cast<int64_t>(selected.size() + dropped.size());
  const double cut =
      kept.empty() ? std::numeric_limits<double>::quiet_NaN() : *std::min_element(kept.begin(), kept.end());
  rep.md << "Open rows scored by " << a.attr("score", "max")
         << " cosine similarity to the K-shot set; C = " << a.attr("c", std::to_string(selected.size()))
         << ", dedup threshold tau = " << a.attr("tau", "n/a") << ".\n\n";
  table_header(rep.md, {"rows scored", "kept", "dropped as near-duplicates", "not reached", "lowest kept score"});
  table_row(rep.md, {std::to_string(rows), std::to_string(selected.size()), std::to_string(dropped.size()),
                     std::to_string(unvisited), fixed(cut, 4)});
  rep.md << "\nScore quantiles:\n\n";
  table_header(rep.md, {"rows", "min", "10%", "25%", "50%", "75%", "90%", "max"});
  for (const auto& [name, v] : {std::pair<std::string, const std::vector<double>*>{"all", &scores}, {"kept", &kept}}) {
    std::vector<std::string> row = {name};
    for (double q : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}) row.push_back(fixed(quantile(*v, q), 4));
    table_row(rep.md, row);
  }
  Histogram h;
  h.title = "Sim-Div similarity to the K-shot set";
  h.x_label = "score (cosine)";
  h.values = scores;
  if (!kept.empty()) h.markers.push_back({cut, "lowest kept " + fixed(cut, 3)});
  rep.plot("similarity_hist.png", histogram_render(h), "histogram of similarity scores with the selection threshold");
}

// Long for the same reason as section_experts: one section, its tables and plots in order.
void section_training(Report& rep) {
  rep.md << "\n## Training (moe.h5)\n\n";
  if (!rep.has("moe.h5")) return rep.missing("moe.h5", "training", {"loss_curve.png", "router_load.png"});
  const Artifact a(rep.dir, "moe.h5");
  const auto step = a.ints("metrics/step");
  const auto loss = a.floats("metrics/loss");
  a.expect_rows("metrics/loss", loss.size(), step.size(), "/metrics/step");
  auto optional = [&](const std::string& name) {
    if (!a.reader.has(name)) return std::vector<double>(step.size(), std::numeric_limits<double>::quiet_NaN());
    auto v = a.floats(name);
    a.expect_rows(name, v.size(), step.size(), "/metrics/step");
    return v;
  };
  const auto lr = optional("metrics/lr"), grad_norm = optional("metrics/grad_norm");
  const auto tps = optional("metrics/tokens_per_s");
  if (step.empty()) {
    rep.md << "moe.h5 records no training steps.\n";
    rep.stale.push_back("loss_curve.png");
  } else {
    const bool curve = step.size() >= 2;  // a curve of one point says nothing: the table has it
    const size_t tail = std::max<size_t>(1, step.size() / 10);
    const std::vector<double> last(loss.end() - tail, loss.end());
    table_header(rep.md, {"steps", "final loss", "mean loss, last " + std::to_string(tail) + " steps", "min loss",
                          "final lr", "final grad norm", "mean tokens/s"});
    table_row(rep.md, {std::to_string(step.back()), fixed(loss.back(), 4), fixed(mean_finite(last), 4),
                       fixed(quantile(loss, 0.0), 4), general(lr.back()), fixed(grad_norm.back(), 4),
                       fixed(mean_finite(tps), 1)});
    LineChart chart;
    chart.title = "training loss";
    chart.x_label = "step";
    chart.y_label = "loss";
    LineSeries raw{"loss", {}, loss}, smooth{"moving mean", {}, {}};
    const size_t window = std::max<size_t>(1, step.size() / 20);
    double sum = 0;
    for (size_t i = 0; i < step.size(); ++i) {
      raw.x.push_back(static_cast<double>(step[i]));
      sum += loss[i];
      if (i >= window) sum -= loss[i - window];
      smooth.x.push_back(static_cast<double>(step[i]));
      smooth.y.push_back(sum / static_cast<double>(std::min(i + 1, window)));
    }
    chart.series = {raw};
    if (window > 1) chart.series.push_back(smooth);
    const double lo = quantile(loss, 0.0), hi = quantile(loss, 1.0);
    chart.log_y = lo > 0 && hi / lo > 20;
    if (curve) {
      rep.plot("loss_curve.png", line_chart_render(chart), "training loss per step");
    } else {
      rep.md << "\nOne optimizer step: no loss curve to draw.\n";
      rep.stale.push_back("loss_curve.png");
    }
  }
  // Router load: /router_load [keys, experts] routing weight (the renormalised top-k gates
  // summed over tokens), normalised per row for the plot.
  if (!a.reader.has("router_load")) {
    rep.md << "\nmoe.h5 has no /router_load.\n";
    rep.stale.push_back("router_load.png");
    return;
  }
  const auto shape = a.reader.shape("router_load");
  const auto keys = a.strings("moe/keys"), experts = a.strings("moe/expert_names");
  if (shape.size() != 2 || shape[0] != static_cast<int64_t>(keys.size()) ||
      shape[1] != static_cast<int64_t>(experts.size())) {
    throw std::runtime_error(a.reader.path() + ": /router_load is not [" + std::to_string(keys.size()) + " keys, " +
                             std::to_string(experts.size()) + " experts]");
  }
  const auto load = a.floats("router_load");
  const size_t n_keys = keys.size(), n_exp = experts.size();
  std::vector<double> share(load.size()), total(n_exp, 0.0);
  double max_share = 0, min_share = 1;
  for (size_t k = 0; k < n_keys; ++k) {
    double row = 0;
    for (size_t e = 0; e < n_exp; ++e) row += load[k * n_exp + e], total[e] += load[k * n_exp + e];
    for (size_t e = 0; e < n_exp; ++e) {
      share[k * n_exp + e] = row > 0 ? load[k * n_exp + e] / row : std::numeric_limits<double>::quiet_NaN();
      if (row > 0)
        max_share = std::max(max_share, share[k * n_exp + e]), min_share = std::min(min_share, share[k * n_exp + e]);
    }
  }
  const double all = std::accumulate(total.begin(), total.end(), 0.0);
  rep.md << "\nRouter load over " << n_keys << " adapted modules and " << n_exp
         << " experts (share of the routing weight; uniform = " << fixed(1.0 / std::max<size_t>(1, n_exp), 3)
         << "):\n\n";
  table_header(rep.md, {"expert", "routing weight", "share"});
  for (size_t e = 0; e < n_exp; ++e) {
    table_row(rep.md, {experts[e], general(total[e]), fixed(all > 0 ? total[e] / all : NAN, 3)});
  }
  if (max_share >= min_share) {
    rep.md << "\nPer module, an expert's share ranges from " << fixed(min_share, 3) << " to " << fixed(max_share, 3)
           << ".\n";
  }
  // Per training file (/router_load_by_source [sources, keys, experts]): where each task's tokens go.
  if (a.reader.has("router_load_by_source") && a.reader.has("sources")) {
    const auto sources = a.strings("sources");
    const auto by = a.floats("router_load_by_source");
    if (by.size() == sources.size() * n_keys * n_exp) {
      rep.md << "\nShare of each training file's routing weight, over all modules:\n\n";
      std::vector<std::string> head{"data file"};
      head.insert(head.end(), experts.begin(), experts.end());
      table_header(rep.md, head);
      for (size_t src = 0; src < sources.size(); ++src) {
        std::vector<double> w(n_exp, 0.0);
        for (size_t i = 0; i < n_keys * n_exp; ++i) w[i % n_exp] += by[src * n_keys * n_exp + i];
        const double sum = std::accumulate(w.begin(), w.end(), 0.0);
        std::vector<std::string> row{sources[src]};
        for (double v : w) row.push_back(fixed(sum > 0 ? v / sum : NAN, 3));
        table_row(rep.md, row);
      }
    }
  }
  Heatmap hm;
  hm.title = "router load";
  hm.scale_label = "share of module's routing weight";
  hm.row_labels = keys;
  hm.col_labels = experts;
  hm.values = share;
  hm.lo = 0;
  hm.hi = std::max(max_share, 1e-9);
  rep.plot("router_load.png", heatmap_render(hm), "router load per adapted module and expert, normalised per row");
}

// Expert drift (expert_drift.h) of moe.h5 and of any other mixture in the run directory
// (the demo's baselines: moe_random.h5, moe_kshot.h5), so that how much of each bank adapter
// survives training can be read beside the router load.
void section_drift(Report& rep) {
  std::vector<std::string> files;
  if (rep.has("moe.h5")) files.push_back("moe.h5");
  std::vector<std::string> others;
  for (const auto& entry : fs::directory_iterator(rep.dir)) {
    const std::string name = entry.path().filename().string();
    // moe_random.h5, not a checkpoint (moe_random.ckpt.h5) or an unfinished moe_x.h5.partial.
    if (name.rfind("moe_", 0) == 0 && entry.path().extension() == ".h5" && name.find(".ckpt.") == std::string::npos)
      others.push_back(name);
  }
  std::sort(others.begin(), others.end());
  files.insert(files.end(), others.begin(), others.end());
  if (files.empty()) return;
  rep.md << "\n## Expert drift (moe*.h5 and the adapters they started from)\n\n"
         << "How far training moved each expert from its bank adapter, over all adapted modules: dW = B A trained, "
            "dW0 = B0 A0 of the adapter, Frobenius norms. cos^2 is the share of the trained update along the adapter's; a change "
            "well above 1 with a small cosine means training replaced what the adapter had learned.\n\n";
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;
  for (const auto& file : files) {
    const ExpertDriftResult d = expert_drift((fs::path(rep.dir) / file).string());
    if (!d.unavailable.empty()) notes.push_back(file + ": " + d.unavailable + "; drift not measured.");
    for (const auto& x : d.experts) {
      rows.push_back({file, x.expert, fixed(x.norm_ratio, 3), fixed(x.change, 3), fixed(x.cosine, 3)});
    }
  }
  if (!rows.empty()) {
    table_header(rep.md, {"mixture", "expert", "norm(dW) / norm(dW0)", "norm(dW - dW0) / norm(dW0)", "cos(dW, dW0)"});
    for (const auto& row : rows) table_row(rep.md, row);
  }
  for (size_t i = 0; i < notes.size(); ++i) rep.md << (i == 0 && rows.empty() ? "" : "\n") << notes[i] << "\n";
}

void section_eval(Report& rep) {
  rep.md << "\n## Evaluation (eval.h5)\n\n";
  if (!rep.has("eval.h5")) return rep.missing("eval.h5", "evaluation", {});
  const Artifact a(rep.dir, "eval.h5");
  const auto models = a.strings("models");
  const auto acc = a.floats("accuracy");
  a.expect_rows("accuracy", acc.size(), models.size(), "/models");
  std::vector<double> f1(models.size(), std::numeric_limits<double>::quiet_NaN());
  if (a.reader.has("macro_f1")) {
    f1 = a.floats("macro_f1");
    a.expect_rows("macro_f1", f1.size(), models.size(), "/models");
  }
  const auto optional = [&](const std::string& name) {
    std::vector<double> v(models.size(), std::numeric_limits<double>::quiet_NaN());
    if (a.reader.has(name)) {
      v = a.floats(name);
      a.expect_rows(name, v.size(), models.size(), "/models");
    }
    return v;
  };
  const auto acc_ll = optional("acc_ll"), acc_ll_norm = optional("acc_ll_norm");
  const bool ll = std::any_of(acc_ll.begin(), acc_ll.end(), [](double v) { return std::isfinite(v); });
  rep.md << "Task: " << a.attr("task", "(not recorded)") << "."
         << (ll ? " acc_ll, acc_ll_norm: accuracy of the option with the highest (length-normalised) "
                  "log-likelihood."
                : "")
         << "\n\n";
  std::vector<std::string> head{"model", "accuracy", "macro-F1"};
  if (ll) head.insert(head.end(), {"acc_ll", "acc_ll_norm"});
  table_header(rep.md, head);
  for (size_t i = 0; i < models.size(); ++i) {
    std::vector<std::string> row{models[i], fixed(acc[i], 4), fixed(f1[i], 4)};
    if (ll) row.insert(row.end(), {fixed(acc_ll[i], 4), fixed(acc_ll_norm[i], 4)});
    table_row(rep.md, row);
  }
}

// At most `chars` bytes of `s`, cut at a UTF-8 character boundary, with "…" when cut.
std::string shorten(const std::string& s, size_t chars) {
  if (s.size() <= chars) return s;
  size_t n = chars;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "…";
}

// PANDA (when the run has insights.h5): a few insights next to the pairs they explain, and
// the base model with insights (eval_panda.h5) beside eval.h5's rows.
void section_panda(Report& rep) {
  if (!rep.has("insights.h5")) return;
  rep.md << "\n## PANDA insights (insights.h5)\n\n";
  const Artifact a(rep.dir, "insights.h5");
  const auto keys = a.strings("keys"), preferred = a.strings("preferred"), rejected = a.strings("rejected"),
             insights = a.strings("insights");
  const auto has = a.ints("has_pair");
  a.expect_rows("insights", insights.size(), keys.size(), "/keys");
  a.expect_rows("has_pair", has.size(), keys.size(), "/keys");
  const std::string moe = a.attr("expert_moe", ""), adapter = a.attr("expert_adapter", "");
  rep.md << "Expert: `" << (moe.empty() ? (adapter.empty() ? a.attr("expert_model", "?") : adapter) : moe)
         << "`; insights written by `" << a.attr("llm", "?") << "`; pairs " << a.attr("pairs", "?") << "; "
         << std::accumulate(has.begin(), has.end(), int64_t{0}) << " of " << keys.size()
         << " examples have a pair. The first few:\n\n";
  table_header(rep.md, {"question", "expert prefers", "to", "insight"});
  size_t shown = 0;
  for (size_t i = 0; i < keys.size() && shown < 5; ++i) {
    if (!has[i]) continue;
    table_row(rep.md, {shorten(keys[i], 120), shorten(preferred[i], 60), shorten(rejected[i], 60),
                       shorten(insights[i], 400)});
    ++shown;
  }
  if (!rep.has("eval_panda.h5")) return;
  const Artifact e(rep.dir, "eval_panda.h5");
  const auto models = e.strings("models");
  const auto acc = e.floats("accuracy"), f1 = e.floats("macro_f1");
  const auto pred = e.strings("prediction");
  // Agreement with the expert: the share of test examples where the answers are equal.
  std::vector<std::string> expert_pred;
  if (rep.has("eval.h5")) {
    const Artifact x(rep.dir, "eval.h5");
    const auto xm = x.strings("models"), xp = x.strings("prediction");
    const auto it = std::find(xm.begin(), xm.end(), "moe");
    if (it != xm.end() && x.strings("samples") == e.strings("samples")) {
      const size_t n = xp.size() / xm.size(), m = it - xm.begin();
      expert_pred.assign(xp.begin() + m * n, xp.begin() + (m + 1) * n);
    }
  }
  rep.md << "\nWith the insights before each test question (eval_panda.h5, " << e.attr("insight_mode", "insights")
         << "):\n\n";
  table_header(rep.md, {"model", "accuracy", "macro-F1", "answers equal to the MoE's"});
  const size_t n = models.empty() ? 0 : pred.size() / models.size();
  for (size_t m = 0; m < models.size(); ++m) {
    std::string agree = "n/a";
    if (!expert_pred.empty() && expert_pred.size() == n) {
      size_t same = 0;
      for (size_t k = 0; k < n; ++k) same += pred[m * n + k] == expert_pred[k];
      agree = fixed(static_cast<double>(same) / static_cast<double>(n), 4);
    }
    table_row(rep.md, {models[m] + " + insights", fixed(acc.at(m), 4), fixed(f1.at(m), 4), agree});
  }
}

}  // namespace

std::string report_text_commit(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    if (!f.flush()) {
      fs::remove(tmp);
      throw std::runtime_error(tmp.string() + ": cannot write the report");
    }
  }
  fs::rename(tmp, path);
  return path.string();
}

std::vector<std::string> report_write(const std::string& run_dir) {
  if (!fs::is_directory(run_dir)) throw std::runtime_error(run_dir + ": not a run directory");
  Report rep;
  rep.dir = run_dir;
  rep.md << "# kmoe run report\n\nRun directory: `" << fs::absolute(run_dir).lexically_normal().string() << "`\n";
  section_scores(rep, experts_summary(rep));
  section_experts(rep);
  section_data(rep);
  section_training(rep);
  section_drift(rep);
  section_eval(rep);
  section_panda(rep);
  std::string written;
  std::vector<std::string> paths;
  for (const auto& [name, image] : rep.plots) {
    paths.push_back((fs::path(run_dir) / name).string());
    png_write(paths.back(), image);
    written += " " + name;
  }
  for (const auto& name : rep.stale) fs::remove(fs::path(run_dir) / name);
  std::map<std::string, std::string> svgs;
  for (const auto& [name, image] : rep.plots) svgs[name] = svg_encode(image);
  const std::string html = report_html(rep.md.str(), svgs, "kmoe run report: " + fs::path(run_dir).filename().string());
  const std::string html_path = report_text_commit(fs::path(run_dir) / "report.html", html);
  const std::string md_path = report_text_commit(fs::path(run_dir) / "report.md", rep.md.str());
  log_info("report: ", md_path, ", report.html", written.empty() ? "" : " and", written);
  paths.insert(paths.begin(), {md_path, html_path});
  return paths;
}

StageOutcome report_stage(const MpiWorld& world, const ReportOptions& options) {
  const bool compare = !options.compare.empty();
  if (compare && !options.run_dir.empty()) throw UsageError("kmoe report: give a run directory or --compare, not both");
  if (!compare && options.run_dir.empty()) throw UsageError("kmoe report: --run-dir (or --compare) is required");
  if (!compare && (!options.output.empty() || !options.reference.empty()))
    throw UsageError("kmoe report: --output and --reference go with --compare");
  if (compare && options.output.empty()) throw UsageError("kmoe report --compare: --output DIR is required");
  std::string written;  // the paths, one a line, from rank 0
  if (world.is_root()) {
    const auto paths =
        compare ? compare_write({options.compare, options.reference, options.output}) : report_write(options.run_dir);
    for (const auto& path : paths) written += path + "\n";
  }
  written = mpi_bcast_string(world, written);  // the other ranks wait here for rank 0
  StageOutcome outcome;
  outcome.reason = "written";
  for (size_t begin = 0, end; (end = written.find('\n', begin)) != std::string::npos; begin = end + 1) {
    outcome.outputs.push_back(written.substr(begin, end - begin));
  }
  return outcome;
}

}  // namespace kmoe
