// The task suite's world (internal to the generator): a seeded PRNG and a fixed lexicon of
// short nouns (category, size, colour, whether it flies), colours, names and opposites,
// with the few text helpers the generators share. Strings are short on purpose: the demo's
// model is byte-level, every character a token. See TASK_SUITE.md for the tables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kmoe::suite {

// splitmix64, with integer ranges by rejection: std distributions differ between standard
// libraries, and the suite must be byte-identical everywhere.
struct Rng {
  uint64_t state = 0;

  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int64_t below(int64_t n) {  // uniform in [0, n)
    const uint64_t un = static_cast<uint64_t>(n);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % un;
    uint64_t x = next();
    while (x >= limit) x = next();
    return static_cast<int64_t>(x % un);
  }
  int64_t range(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }  // inclusive
  bool coin() { return below(2) == 1; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(below(static_cast<int64_t>(v.size())))];
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(below(static_cast<int64_t>(i)))]);
  }
};

// An independent stream per named dataset or task, so adding one leaves the others as they were.
Rng rng_for(uint64_t seed, const std::string& name);

struct Thing {
  std::string word, category, colour;
  bool big = false, flies = false;
};

const std::vector<Thing>& things();
const std::vector<std::string>& colours();
const std::vector<std::string>& thing_categories();  // fruit, animal, tool, vehicle
const std::vector<std::string>& categories();        // the thing categories and colour
const std::vector<std::string>& names();
const std::vector<std::pair<std::string, std::string>>& opposites();

bool is_colour(const std::string& word);
const Thing* thing_find(const std::string& word);  // null for a word that is not a thing
std::string category_of(const std::string& word);  // for things and colours
std::vector<std::string> words_where(const std::function<bool(const Thing&)>& keep);
std::vector<std::string> all_words();  // things, then colours
std::vector<std::string> members_of(const std::string& category);

std::string cap(std::string s);  // first letter uppercase
std::string upper(std::string s);
std::string reversed(std::string s);
std::string sorted(std::string s);
std::string with_article(const std::string& word);  // "a fig", "an owl", "red"
std::string plural(const std::string& word);        // "figs", "buses", "peaches"
std::string num(int64_t n);
std::string answer_is(const std::string& answer);                   // " The answer is X."
std::string choice_block(const std::vector<std::string>& choices);  // "\nA. x\nB. y..."

// `k` distinct elements of `pool` in random order; the pool minus `drop`.
std::vector<std::string> sample_distinct(Rng& rng, std::vector<std::string> pool, size_t k);
std::vector<std::string> without(const std::vector<std::string>& pool, const std::vector<std::string>& drop);
// A lexicon word or (half the time) a made-up pronounceable word, of at most `max_len` letters.
std::string string_word(Rng& rng, size_t max_len);

// The options of a lettered question, the right one first on input, shuffled on output.
struct Choice {
  std::vector<std::string> choices;
  std::string letter;
};
Choice shuffle_choices(Rng& rng, std::vector<std::string> options);

// Plain-sentence documents about the world for pretraining (task_suite_pretrain.cpp).
std::vector<std::string> pretrain_generate(Rng& rng, int64_t docs);

}  // namespace kmoe::suite
