// See task_suite_world.h. The lexicon is fixed (the seed only chooses examples), so
// TASK_SUITE.md can list it and every suite shares the same facts.
#include "data/suite/task_suite_world.h"

#include <algorithm>

#include "data/text/kshot.h"

namespace kmoe::suite {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// A pronounceable made-up word of 3 to `max_len` letters (consonant, vowel, ...).
std::string pseudo_word(Rng& rng, int64_t max_len) {
  static const std::string consonants = "bcdfghklmnprstvz", vowels = "aeiou";
  const int64_t len = rng.range(3, max_len);
  std::string w;
  for (int64_t i = 0; i < len; ++i) {
    const std::string& set = (i % 2 == 0) ? consonants : vowels;
    w += set[static_cast<size_t>(rng.below(static_cast<int64_t>(set.size())))];
  }
  return w;
}

constexpr bool kBig = true, kSmall = false, kFlies = true;

}  // namespace

Rng rng_for(uint64_t seed, const std::string& name) {
  Rng r{seed ^ fnv1a(name)};
  r.next();
  return r;
}

const std::vector<Thing>& things() {
  static const std::vector<Thing> v = {
      {"apple", "fruit", "red"},
      {"pear", "fruit", "green"},
      {"plum", "fruit", "purple"},
      {"fig", "fruit", "purple"},
      {"lime", "fruit", "green"},
      {"lemon", "fruit", "yellow"},
      {"kiwi", "fruit", "brown"},
      {"peach", "fruit", "pink"},
      {"melon", "fruit", "green"},
      {"grape", "fruit", "purple"},
      {"cat", "animal", "black"},
      {"dog", "animal", "brown"},
      {"cow", "animal", "white", kBig},
      {"pig", "animal", "pink", kBig},
      {"fox", "animal", "red"},
      {"owl", "animal", "brown", kSmall, kFlies},
      {"bee", "animal", "yellow", kSmall, kFlies},
      {"crow", "animal", "black", kSmall, kFlies},
      {"bat", "animal", "black", kSmall, kFlies},
      {"duck", "animal", "white", kSmall, kFlies},
      {"horse", "animal", "brown", kBig},
      {"whale", "animal", "blue", kBig},
      {"frog", "animal", "green"},
      {"bear", "animal", "brown", kBig},
      {"saw", "tool", "gray"},
      {"axe", "tool", "red"},
      {"hoe", "tool", "green"},
      {"rake", "tool", "brown"},
      {"drill", "tool", "yellow"},
      {"spade", "tool", "gray"},
      {"brush", "tool", "white"},
      {"nail", "tool", "gray"},
      {"hammer", "tool", "black"},
      {"ruler", "tool", "white"},
      {"car", "vehicle", "red", kBig},
      {"bus", "vehicle", "yellow", kBig},
      {"van", "vehicle", "white", kBig},
      {"bike", "vehicle", "blue"},
      {"ship", "vehicle", "gray", kBig},
      {"boat", "vehicle", "white", kBig},
      {"train", "vehicle", "black", kBig},
      {"jet", "vehicle", "white", kBig, kFlies},
      {"truck", "vehicle", "red", kBig},
      {"sled", "vehicle", "brown"},
  };
  return v;
}

const std::vector<std::string>& colours() {
  static const std::vector<std::string> v = {"red",   "blue",  "green", "pink",   "gray",
                                             "black", "white", "brown", "yellow", "purple"};
  return v;
}

const std::vector<std::string>& thing_categories() {
  static const std::vector<std::string> v = {"fruit", "animal", "tool", "vehicle"};
  return v;
}

const std::vector<std::string>& categories() {
  static const std::vector<std::string> v = {"fruit", "animal", "tool", "vehicle", "colour"};
  return v;
}

const std::vector<std::string>& names() {
  static const std::vector<std::string> v = {"Ann", "Bob", "Cy",  "Dan", "Eve", "Kim", "Lea", "Max",
                                             "Sam", "Tom", "Zoe", "Ben", "Amy", "Ed",  "Ida", "Joe",
                                             "Liz", "Ned", "Pam", "Ray", "Sue", "Ted", "Una", "Vic"};
  return v;
}

const std::vector<std::pair<std::string, std::string>>& opposites() {
  static const std::vector<std::pair<std::string, std::string>> v = {
      {"hot", "cold"},   {"big", "small"},  {"up", "down"},    {"fast", "slow"},  {"wet", "dry"},
      {"old", "new"},    {"tall", "short"}, {"dark", "light"}, {"open", "shut"},  {"happy", "sad"},
      {"early", "late"}, {"full", "empty"}, {"hard", "soft"},  {"loud", "quiet"}, {"rich", "poor"},
      {"thick", "thin"}, {"near", "far"},   {"good", "bad"},   {"day", "night"},  {"in", "out"}};
  return v;
}

bool is_colour(const std::string& w) {
  return std::find(colours().begin(), colours().end(), w) != colours().end();
}

const Thing* thing_find(const std::string& w) {
  for (const auto& t : things()) {
    if (t.word == w) return &t;
  }
  return nullptr;
}

std::string category_of(const std::string& w) {
  if (is_colour(w)) return "colour";
  return thing_find(w)->category;
}

std::vector<std::string> words_where(const std::function<bool(const Thing&)>& keep) {
  std::vector<std::string> out;
  for (const auto& t : things()) {
    if (keep(t)) out.push_back(t.word);
  }
  return out;
}

std::vector<std::string> all_words() {
  auto v = words_where([](const Thing&) { return true; });
  v.insert(v.end(), colours().begin(), colours().end());
  return v;
}

std::vector<std::string> members_of(const std::string& category) {
  if (category == "colour") return colours();
  return words_where([&](const Thing& t) { return t.category == category; });
}

std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string upper(std::string s) {
  for (auto& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::string reversed(std::string s) {
  std::reverse(s.begin(), s.end());
  return s;
}

std::string sorted(std::string s) {
  std::sort(s.begin(), s.end());
  return s;
}

std::string with_article(const std::string& w) {
  if (is_colour(w)) return w;
  const bool vowel = std::string("aeiou").find(w[0]) != std::string::npos;
  return std::string(vowel ? "an " : "a ").append(w);
}

std::string plural(const std::string& w) {
  if (w.ends_with("s") || w.ends_with("x") || w.ends_with("ch") || w.ends_with("sh")) return w + "es";
  return w + "s";
}

std::string num(int64_t n) {
  return std::to_string(n);
}

std::string answer_is(const std::string& a) {
  return std::string(" The answer is ").append(a).append(".");
}

std::string choice_block(const std::vector<std::string>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i)
    out.append("\n").append(kshot_choice_letter(i)).append(". ").append(choices[i]);
  return out;
}

std::vector<std::string> sample_distinct(Rng& rng, std::vector<std::string> pool, size_t k) {
  rng.shuffle(pool);
  pool.resize(k);
  return pool;
}

std::vector<std::string> without(const std::vector<std::string>& pool, const std::vector<std::string>& drop) {
  std::vector<std::string> out;
  for (const auto& w : pool) {
    if (std::find(drop.begin(), drop.end(), w) == drop.end()) out.push_back(w);
  }
  return out;
}

std::string string_word(Rng& rng, size_t max_len) {
  if (rng.coin()) return pseudo_word(rng, static_cast<int64_t>(max_len));
  std::vector<std::string> pool;
  for (const auto& w : all_words()) {
    if (w.size() <= max_len) pool.push_back(w);
  }
  return rng.pick(pool);
}

Choice shuffle_choices(Rng& rng, std::vector<std::string> options) {
  const std::string correct = options[0];
  rng.shuffle(options);
  const auto pos = static_cast<size_t>(std::find(options.begin(), options.end(), correct) - options.begin());
  return {options, kshot_choice_letter(pos)};
}

}  // namespace kmoe::suite
