// The pretraining corpus of the task suite: short documents of plain sentences about the
// world (what a thing is, its size, colour, whether it flies, how it is spelled; sums,
// parity and order of small numbers; opposites; little stories). It teaches the language
// and the facts, never the tasks: no instructions, no questions, no "The answer is".
#include <algorithm>

#include "data/suite/task_suite_world.h"

namespace kmoe::suite {

namespace {

std::string spelled(const std::string& w) {
  std::string out;
  for (size_t i = 0; i < w.size(); ++i) out += (i ? ", " : "") + std::string(1, w[i]);
  return out;
}

// Sentences about one thing; the caller keeps a few.
std::vector<std::string> thing_facts(Rng& rng, const Thing& t) {
  const std::string a = cap(with_article(t.word));
  return {a + " is " + with_article(t.category) + ".",
          a + (t.big ? " is big." : " is small."),
          a + (t.flies ? " can fly." : " can not fly."),
          a + " is " + t.colour + ".",
          "The word " + t.word + " has " + num(static_cast<int64_t>(t.word.size())) + " letters.",
          "The word " + t.word + " is spelled " + spelled(t.word) + ".",
          "In capitals, " + t.word + " is " + upper(t.word) + ".",
          rng.pick(names()) + " has " + with_article(t.word) + ".",
          rng.pick(names()) + " has " + num(rng.range(2, 9)) + " " + plural(t.word) + ".",
          cap(plural(t.word)) + " are " + plural(t.category) + "."};
}

std::vector<std::string> number_facts(Rng& rng) {
  const int64_t a = rng.range(0, 20), b = rng.range(0, 20), n = rng.range(0, 99);
  const int64_t hi = std::max(a, b), lo = std::min(a, b);
  std::vector<std::string> v = {num(a) + " + " + num(b) + " = " + num(a + b) + ".",
                                num(a) + " and " + num(b) + " make " + num(a + b) + ".",
                                num(hi) + " - " + num(lo) + " = " + num(hi - lo) + ".",
                                num(n) + " is " + (n % 2 == 0 ? "even." : "odd."),
                                num(n + 1) + " comes after " + num(n) + ".",
                                num(n) + " + " + num(n) + " = " + num(2 * n) + "."};
  if (a != b) {
    v.push_back(num(hi) + " is more than " + num(lo) + ".");
    v.push_back(num(lo) + " is less than " + num(hi) + ".");
    v.push_back(num(hi) + " > " + num(lo) + ".");
  }
  return v;
}

std::vector<std::string> category_facts(Rng& rng) {
  const std::string c = rng.pick(categories());
  const auto some = sample_distinct(rng, members_of(c), 3);
  std::vector<std::string> v = {cap(some[0]) + ", " + some[1] + " and " + some[2] + " are " + plural(c) + "."};
  for (const auto& w : some) v.push_back(cap(with_article(w)) + " is " + with_article(c) + ".");
  return v;
}

std::vector<std::string> opposite_facts(Rng& rng) {
  std::vector<std::string> v;
  for (int i = 0; i < 4; ++i) {
    const auto& p = rng.pick(opposites());
    v.push_back(rng.coin() ? "The opposite of " + p.first + " is " + p.second + "."
                           : cap(p.first) + " and " + p.second + " are opposites.");
  }
  return v;
}

std::vector<std::string> story(Rng& rng) {
  const auto who = sample_distinct(rng, names(), 2);
  const Thing& t = rng.pick(things());
  const Thing& u = rng.pick(things());
  const int64_t x = rng.range(2, 9), y = rng.range(1, x - 1);
  const std::string a = with_article(t.word);
  return {who[0] + " has " + num(x) + " " + plural(t.word) + ".",
          who[0] + " gives " + who[1] + " " + num(y) + " " + plural(t.word) + ".",
          "Now " + who[0] + " has " + num(x - y) + " and " + who[1] + " has " + num(y) + ".",
          who[1] + " sees " + with_article(u.word) + ".",
          "The " + u.word + (u.flies ? " can fly." : " can not fly."),
          "The " + u.word + " is " + u.colour + " and " + (u.big ? "big." : "small.")};
}

}  // namespace

std::vector<std::string> pretrain_generate(Rng& rng, int64_t docs) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(docs));
  for (int64_t d = 0; d < docs; ++d) {
    const int64_t kind = rng.below(20);
    std::vector<std::string> sentences;
    if (kind < 8) {
      sentences = thing_facts(rng, rng.pick(things()));
      rng.shuffle(sentences);
      sentences.resize(static_cast<size_t>(rng.range(4, 7)));
    } else if (kind < 13) {
      for (int i = 0; i < 2; ++i) {
        auto more = number_facts(rng);
        rng.shuffle(more);
        sentences.insert(sentences.end(), more.begin(), more.begin() + 3);
      }
    } else if (kind < 15) {
      sentences = category_facts(rng);
    } else if (kind < 17) {
      sentences = opposite_facts(rng);
    } else {
      sentences = story(rng);  // in order: a story
    }
    std::string text;
    for (const auto& s : sentences) text += (text.empty() ? "" : " ") + s;
    out.push_back(std::move(text));
  }
  return out;
}

}  // namespace kmoe::suite
