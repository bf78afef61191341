// See task_suite.h and TASK_SUITE.md. The world is a fixed lexicon (nouns with a category,
// a size, a colour and whether they fly; opposites; names); the seed only drives which
// examples are drawn. Each generator returns one sample from its own splitmix64 stream;
// samples are drawn without repeats (a dataset whose space is smaller than the request
// repeats once 50 draws per sample found nothing new), and no K-shot or test question of
// a target task equals any open sample's question.
#include "data/suite/task_suite.h"

#include <algorithm>
#include <functional>
#include <set>
#include <stdexcept>

#include "data/suite/task_suite_world.h"

namespace kmoe {

namespace {

using namespace suite;

// ---- Open datasets.
using OpenGenerator = std::function<OpenSample(Rng&)>;

OpenSample arith_add(Rng& rng) {
  const int64_t a = rng.range(0, 20), b = rng.range(0, 20);
  const std::vector<std::string> t = {"What is " + num(a) + " + " + num(b) + "?",
                                      "Add " + num(a) + " and " + num(b) + ".",
                                      "What is the sum of " + num(a) + " and " + num(b) + "?"};
  return {rng.pick(t), "", num(a) + " + " + num(b) + " = " + num(a + b) + "." + answer_is(num(a + b))};
}

OpenSample arith_sub(Rng& rng) {
  const int64_t a = rng.range(1, 20), b = rng.range(0, a);
  const std::vector<std::string> t = {"What is " + num(a) + " - " + num(b) + "?",
                                      "Take " + num(b) + " from " + num(a) + ".",
                                      "Subtract " + num(b) + " from " + num(a) + "."};
  return {rng.pick(t), "", num(a) + " - " + num(b) + " = " + num(a - b) + "." + answer_is(num(a - b))};
}

OpenSample arith_double(Rng& rng) {
  const int64_t a = rng.range(1, 99);
  const std::vector<std::string> t = {"What is double " + num(a) + "?", "Double " + num(a) + ".",
                                      "What is twice " + num(a) + "?", "What is " + num(a) + " times 2?",
                                      "Double the number " + num(a) + "."};
  return {rng.pick(t), "", num(a) + " + " + num(a) + " = " + num(2 * a) + "." + answer_is(num(2 * a))};
}

OpenSample arith_count(Rng& rng) {
  const std::string category = rng.pick(thing_categories());
  const auto members = members_of(category);
  const auto others = without(all_words(), members);
  const int64_t n = rng.range(3, 5), k = rng.range(1, std::min<int64_t>(n, 3));
  auto words = sample_distinct(rng, members, static_cast<size_t>(k));
  const auto rest = sample_distinct(rng, others, static_cast<size_t>(n - k));
  words.insert(words.end(), rest.begin(), rest.end());
  rng.shuffle(words);
  std::string list, counting;
  int64_t count = 0;
  for (const auto& w : words) {
    list += (list.empty() ? "" : ", ") + w;
    if (category_of(w) == category) counting += (counting.empty() ? "" : ", ") + w + " " + num(++count);
  }
  return {"How many " + plural(category) + " are in: " + list + "?", "", counting + "." + answer_is(num(count))};
}

OpenSample yesno_even(Rng& rng) {
  const int64_t n = rng.range(0, 99);
  const bool ask_even = rng.coin(), long_form = rng.coin();
  const std::string parity = n % 2 == 0 ? "even" : "odd";
  const std::string asked = ask_even ? "even" : "odd";
  const std::string q = long_form ? "Is " + num(n) + " an " + asked + " number?" : "Is " + num(n) + " " + asked + "?";
  return {q, "", num(n) + " is " + parity + "." + answer_is(asked == parity ? "yes" : "no")};
}

OpenSample yesno_greater(Rng& rng) {
  const int64_t a = rng.range(0, 50);
  int64_t b = rng.range(0, 49);
  if (b >= a) ++b;
  const int kind = static_cast<int>(rng.below(3));
  const std::string q = kind == 0   ? "Is " + num(a) + " greater than " + num(b) + "?"
                        : kind == 1 ? "Is " + num(a) + " more than " + num(b) + "?"
                                    : "Is " + num(a) + " less than " + num(b) + "?";
  const bool yes = kind == 2 ? a < b : a > b;
  const std::string why = a > b ? num(a) + " > " + num(b) : num(a) + " < " + num(b);
  return {q, "", why + "." + answer_is(yes ? "yes" : "no")};
}

OpenSample yesno_member(Rng& rng) {
  const std::string w = rng.pick(all_words());
  const std::string own = category_of(w);
  const std::string asked = rng.coin() ? own : rng.pick(without(categories(), {own}));
  const int kind = static_cast<int>(rng.below(3));
  const std::string q = kind == 0   ? "Is " + with_article(w) + " " + with_article(asked) + "?"
                        : kind == 1 ? "Is " + with_article(w) + " a kind of " + asked + "?"
                                    : "Would you call " + with_article(w) + " " + with_article(asked) + "?";
  return {q, "", cap(with_article(w)) + " is " + with_article(own) + "." + answer_is(asked == own ? "yes" : "no")};
}

OpenSample yesno_property(Rng& rng) {
  const Thing& t = rng.pick(things());
  const std::string a = with_article(t.word);
  switch (rng.below(5)) {
    case 0:
      return {"Can " + a + " fly?", "",
              cap(a) + (t.flies ? " can fly." : " can not fly.") + answer_is(t.flies ? "yes" : "no")};
    case 1:
      return {"Is " + a + " able to fly?", "",
              cap(a) + (t.flies ? " can fly." : " can not fly.") + answer_is(t.flies ? "yes" : "no")};
    case 2:
      return {"Is " + a + " big?", "", cap(a) + (t.big ? " is big." : " is small.") + answer_is(t.big ? "yes" : "no")};
    case 3:
      return {"Is " + a + " small?", "",
              cap(a) + (t.big ? " is big." : " is small.") + answer_is(t.big ? "no" : "yes")};
    default: {
      const std::string c = rng.coin() ? t.colour : rng.pick(colours());
      return {"Is " + a + " " + c + "?", "",
              cap(a) + " is " + t.colour + "." + answer_is(c == t.colour ? "yes" : "no")};
    }
  }
}

OpenSample mc_member(Rng& rng) {
  const std::string category = rng.pick(categories());
  const auto members = members_of(category);
  std::vector<std::string> options = {rng.pick(members)};
  const auto wrong = sample_distinct(rng, without(all_words(), members), 3);
  options.insert(options.end(), wrong.begin(), wrong.end());
  const Choice c = shuffle_choices(rng, options);
  return {"Which is " + with_article(category) + "?" + choice_block(c.choices), "",
          cap(with_article(options[0])) + " is " + with_article(category) + "." + answer_is(c.letter)};
}

OpenSample mc_larger(Rng& rng) {
  std::vector<int64_t> n;
  while (n.size() < 4) {
    const int64_t x = rng.range(0, 40);
    if (std::find(n.begin(), n.end(), x) == n.end()) n.push_back(x);
  }
  const bool largest = rng.coin();
  const int64_t best = largest ? *std::max_element(n.begin(), n.end()) : *std::min_element(n.begin(), n.end());
  std::vector<std::string> options = {num(best)};
  for (const int64_t x : n) {
    if (x != best) options.push_back(num(x));
  }
  const Choice c = shuffle_choices(rng, options);
  const std::string which = largest ? "largest" : "smallest";
  return {"Which number is the " + which + "?" + choice_block(c.choices), "",
          num(best) + " is the " + which + "." + answer_is(c.letter)};
}

OpenSample mc_opposite(Rng& rng) {
  const auto& pair = rng.pick(opposites());
  const bool flip = rng.coin();
  const std::string w = flip ? pair.second : pair.first, o = flip ? pair.first : pair.second;
  std::vector<std::string> pool;
  for (const auto& p : opposites()) {
    if (p != pair) pool.insert(pool.end(), {p.first, p.second});
  }
  std::vector<std::string> options = {o};
  const auto wrong = sample_distinct(rng, pool, 3);
  options.insert(options.end(), wrong.begin(), wrong.end());
  const Choice c = shuffle_choices(rng, options);
  return {"What is the opposite of " + w + "?" + choice_block(c.choices), "",
          "The opposite of " + w + " is " + o + "." + answer_is(c.letter)};
}

OpenSample mc_odd(Rng& rng) {
  const std::string category = rng.pick(categories());
  const auto members = members_of(category);
  const std::string odd = rng.pick(without(all_words(), members));
  std::vector<std::string> options = {odd};
  const auto same = sample_distinct(rng, members, 3);
  options.insert(options.end(), same.begin(), same.end());
  const Choice c = shuffle_choices(rng, options);
  return {"Which one does not belong?" + choice_block(c.choices), "",
          cap(with_article(odd)) + " is " + with_article(category_of(odd)) + ", the rest are " + plural(category) +
              "." + answer_is(c.letter)};
}

OpenSample string_reverse(Rng& rng) {
  const std::string w = string_word(rng, 6);
  const std::vector<std::string> t = {"Reverse the word " + w + ".", "Write " + w + " backwards.",
                                      "Spell " + w + " backwards."};
  return {rng.pick(t), "", w + " backwards is " + reversed(w) + "." + answer_is(reversed(w))};
}

OpenSample string_upper(Rng& rng) {
  const std::string w = string_word(rng, 6);
  const std::vector<std::string> t = {"Write " + w + " in capitals.", "Make " + w + " uppercase.",
                                      "Give " + w + " in capital letters."};
  return {rng.pick(t), "", w + " in capitals is " + upper(w) + "." + answer_is(upper(w))};
}

OpenSample string_initials(Rng& rng) {
  const int64_t n = rng.range(3, 4);
  std::string list, letters, spelled;
  for (int64_t i = 0; i < n; ++i) {
    const std::string w = string_word(rng, 5);
    list += (i ? " " : "") + w;
    letters += w[0];
    spelled += (i ? ", " : "") + std::string(1, w[0]);
  }
  const std::vector<std::string> t = {"Give the first letter of each word: " + list,
                                      "Join the first letters of: " + list};
  return {rng.pick(t), "", "The first letters are " + spelled + "." + answer_is(letters)};
}

OpenSample string_sort(Rng& rng) {
  const std::string w = string_word(rng, 6);
  const std::vector<std::string> t = {"Sort the letters of " + w + ".", "Put the letters of " + w + " in order.",
                                      "Write the letters of " + w + " in ABC order."};
  return {rng.pick(t), "", w + " sorted is " + sorted(w) + "." + answer_is(sorted(w))};
}

OpenSample chat_greet(Rng& rng) {
  const std::string n = rng.pick(names());
  switch (rng.below(4)) {
    case 0:
      return {"Say hello to " + n + ".", "",
              rng.pick(std::vector<std::string>{"Hello, " + n + "! Nice to see you.", "Hi " + n + ", how are you?",
                                                "Hello there, " + n + "!"})};
    case 1:
      return {"Say goodbye to " + n + ".", "",
              rng.pick(std::vector<std::string>{"Goodbye, " + n + "! See you soon.", "Bye " + n + ", take care!"})};
    case 2:
      return {"Wish " + n + " a good morning.", "",
              rng.pick(std::vector<std::string>{"Good morning, " + n + "!", "Morning, " + n + "! Have a nice day."})};
    default:
      return {"Welcome " + n + " to the party.", "",
              rng.pick(std::vector<std::string>{"Welcome, " + n + "! Come in.", "So glad you came, " + n + "!"})};
  }
}

OpenSample chat_copy(Rng& rng) {
  static const std::vector<std::string> verbs = {
      "sings a song",  "reads a book", "plays in the park", "walks home", "bakes bread", "writes a letter",
      "paints a wall", "sleeps late",  "swims in the lake", "cooks soup", "hums a tune", "waves hello"};
  static const std::vector<std::string> when = {"",           " today",       " at noon",
                                                " on Sunday", " in the rain", " with a friend"};
  const std::string s = rng.pick(names()) + " " + rng.pick(verbs) + rng.pick(when) + ".";
  const std::vector<std::string> t = {"Copy this sentence: " + s, "Repeat after me: " + s, "Say again: " + s};
  return {rng.pick(t), "", s};
}

OpenSample chat_colour(Rng& rng) {
  const Thing& t = rng.pick(things());
  const std::string a = with_article(t.word);
  const std::vector<std::string> q = {"What colour is " + a + "?", "Name the colour of " + a + ".",
                                      "Tell me the colour of " + a + "."};
  const std::vector<std::string> r = {cap(a) + " is " + t.colour + ".", "It is " + t.colour + ".",
                                      cap(plural(t.word)) + " are " + t.colour + "."};
  return {rng.pick(q), "", rng.pick(r)};
}

OpenSample chat_thanks(Rng& rng) {
  const std::string n = rng.pick(names()), w = rng.pick(things()).word;
  const std::vector<std::string> q = {"Thank " + n + " for the " + w + ".",
                                      "Write a thank-you to " + n + " for the " + w + "."};
  const std::vector<std::string> r = {"Thank you for the " + w + ", " + n + "!",
                                      "Thanks a lot for the " + w + ", " + n + ".",
                                      n + ", thank you so much for the " + w + "!"};
  return {rng.pick(q), "", rng.pick(r)};
}

struct DatasetSpec {
  std::string family, name;
  OpenGenerator generate;
};

std::vector<SuiteFamily> families_list() {
  return {{"arith", "arithmetic on small numbers; the rationale shows the sum"},
          {"yesno", "yes/no judgements about numbers, categories and properties"},
          {"mc", "multiple choice with the options lettered in the instruction"},
          {"string", "transforms of single words: reverse, capitals, first letters, sorted letters"},
          {"chat", "distractor: greetings, copying, colours, thanks; no answer template"}};
}

std::vector<DatasetSpec> datasets_list() {
  return {{"arith", "add", arith_add},
          {"arith", "sub", arith_sub},
          {"arith", "double", arith_double},
          {"arith", "count", arith_count},
          {"yesno", "even", yesno_even},
          {"yesno", "greater", yesno_greater},
          {"yesno", "member", yesno_member},
          {"yesno", "property", yesno_property},
          {"mc", "member", mc_member},
          {"mc", "larger", mc_larger},
          {"mc", "opposite", mc_opposite},
          {"mc", "odd", mc_odd},
          {"string", "reverse", string_reverse},
          {"string", "upper", string_upper},
          {"string", "initials", string_initials},
          {"string", "sort", string_sort},
          {"chat", "greet", chat_greet},
          {"chat", "copy", chat_copy},
          {"chat", "colour", chat_colour},
          {"chat", "thanks", chat_thanks}};
}

// ---- Target tasks. A generator returns one example without id.
using TaskGenerator = std::function<KshotExample(Rng&)>;

// ARC/PiQA-like: a property question with four choices.
KshotExample task_mc(Rng& rng) {
  const auto flyers = words_where([](const Thing& t) { return t.flies; });
  const auto walkers = words_where([](const Thing& t) { return !t.flies; });
  const auto bigs = words_where([](const Thing& t) { return t.big; });
  const auto smalls = words_where([](const Thing& t) { return !t.big; });
  const auto ask = [&](const std::string& q, const std::vector<std::string>& right,
                       const std::vector<std::string>& wrong, const std::string& fact) {
    std::vector<std::string> options = {rng.pick(right)};
    const auto w = sample_distinct(rng, wrong, 3);
    options.insert(options.end(), w.begin(), w.end());
    const Choice c = shuffle_choices(rng, options);
    KshotExample ex;
    ex.instruction = q;
    ex.choices = c.choices;
    ex.answer = c.letter;
    ex.rationale = cap(with_article(options[0])) + fact;
    return ex;
  };
  switch (rng.below(4)) {
    case 0:
      return ask("Which of these can fly?", flyers, walkers, " can fly.");
    case 1:
      return ask("Which of these can not fly?", walkers, flyers, " can not fly.");
    case 2:
      return ask("Which of these is big?", bigs, smalls, " is big.");
    default:
      return ask("Which of these is small?", smalls, bigs, " is small.");
  }
}

// BoolQ-like: a short passage about who has what, and a question that needs it plus a fact.
KshotExample task_yesno(Rng& rng) {
  const auto people = sample_distinct(rng, names(), static_cast<size_t>(rng.range(2, 3)));
  const bool want_yes = rng.coin();
  KshotExample ex;
  const int64_t kind = rng.below(4);
  if (kind == 3) {  // counts: does P have more X than Q?
    const std::string w = rng.pick(things()).word;
    std::vector<int64_t> counts;
    for (size_t i = 0; i < people.size(); ++i) counts.push_back(rng.range(2, 12));
    while (counts[1] == counts[0]) counts[1] = rng.range(2, 12);
    if ((counts[0] > counts[1]) != want_yes) std::swap(counts[0], counts[1]);
    std::string passage;
    for (size_t i = 0; i < people.size(); ++i) {
      passage += (i ? " " : "") + people[i] + " has " + num(counts[i]) + " " + plural(w) + ".";
    }
    ex.instruction = "Does " + people[0] + " have more " + plural(w) + " than " + people[1] + "?";
    ex.input = passage;
    const std::string rel = counts[0] > counts[1] ? " > " : " < ";
    ex.rationale = people[0] + " has " + num(counts[0]) + " and " + people[1] + " has " + num(counts[1]) + ". " +
                   num(counts[0]) + rel + num(counts[1]) + ".";
    ex.answer = want_yes ? "yes" : "no";
    return ex;
  }
  // One thing per person; the one asked about is drawn so that yes and no are equally likely.
  const size_t asked = static_cast<size_t>(rng.below(static_cast<int64_t>(people.size())));
  const auto fits = [&](const Thing& x) {
    return kind == 0 ? true : kind == 1 ? x.flies == want_yes : x.big == want_yes;
  };
  const std::string key = rng.pick(words_where(fits));
  std::vector<std::string> owned = sample_distinct(rng, without(all_words(), colours()), people.size());
  const auto dup = std::find(owned.begin(), owned.end(), key);
  if (dup != owned.end()) *dup = owned[asked];
  owned[asked] = key;
  const Thing& t = *thing_find(key);
  std::string question, fact;
  bool yes = false;
  if (kind == 0) {
    const std::string c = want_yes ? t.category : rng.pick(without(thing_categories(), {t.category}));
    question = "Does " + people[asked] + " have " + with_article(c) + "?";
    fact = " is " + with_article(t.category) + ".";
    yes = c == t.category;
  } else if (kind == 1) {
    question = "Does " + people[asked] + " have something that can fly?";
    fact = t.flies ? " can fly." : " can not fly.";
    yes = t.flies;
  } else {
    question = "Does " + people[asked] + " have something big?";
    fact = t.big ? " is big." : " is small.";
    yes = t.big;
  }
  std::string passage;
  for (size_t i = 0; i < people.size(); ++i)
    passage += (i ? " " : "") + people[i] + " has " + with_article(owned[i]) + ".";
  ex.instruction = question;
  ex.input = passage;
  ex.rationale = people[asked] + " has " + with_article(t.word) + ". " + cap(with_article(t.word)) + fact;
  ex.answer = yes ? "yes" : "no";
  return ex;
}

// GSM8K-like: a two-step word problem; the rationale shows both steps.
KshotExample task_math(Rng& rng) {
  const auto people = sample_distinct(rng, names(), 2);
  const std::string a = people[0], b = people[1];
  const std::string items = plural(rng.pick(things()).word);
  const auto step = [](int64_t x, const char* op, int64_t y, int64_t z) {
    return num(x) + " " + op + " " + num(y) + " = " + num(z) + ".";
  };
  KshotExample ex;
  int64_t answer = 0;
  switch (rng.below(5)) {
    case 0: {  // x + y - z
      const int64_t x = rng.range(2, 15), y = rng.range(1, 10), z = rng.range(1, x + y);
      ex.instruction = a + " has " + num(x) + " " + items + ", gets " + num(y) + " more, then gives away " + num(z) +
                       ". How many " + items + " does " + a + " have?";
      answer = x + y - z;
      ex.rationale = step(x, "+", y, x + y) + " " + step(x + y, "-", z, answer);
      break;
    }
    case 1: {  // x - y + z
      const int64_t x = rng.range(2, 15), y = rng.range(1, x), z = rng.range(1, 10);
      ex.instruction = a + " has " + num(x) + " " + items + ", gives away " + num(y) + ", then gets " + num(z) +
                       " more. How many " + items + " does " + a + " have?";
      answer = x - y + z;
      ex.rationale = step(x, "-", y, x - y) + " " + step(x - y, "+", z, answer);
      break;
    }
    case 2: {  // x + (x + y)
      const int64_t x = rng.range(1, 12), y = rng.range(1, 9);
      ex.instruction = a + " has " + num(x) + " " + items + ". " + b + " has " + num(y) + " more than " + a +
                       ". How many " + items + " do they have in all?";
      answer = x + (x + y);
      ex.rationale = step(x, "+", y, x + y) + " " + step(x, "+", x + y, answer);
      break;
    }
    case 3: {  // x + 2x
      const int64_t x = rng.range(1, 12);
      ex.instruction = a + " has " + num(x) + " " + items + ". " + b + " has twice as many. How many " + items +
                       " do they have in all?";
      answer = 3 * x;
      ex.rationale = step(x, "+", x, 2 * x) + " " + step(x, "+", 2 * x, answer);
      break;
    }
    default: {  // x + (x - y)
      const int64_t x = rng.range(3, 15), y = rng.range(1, x - 1);
      ex.instruction = a + " has " + num(x) + " " + items + ". " + b + " has " + num(y) + " fewer than " + a +
                       ". How many " + items + " do they have in all?";
      answer = x + (x - y);
      ex.rationale = step(x, "-", y, x - y) + " " + step(x, "+", x - y, answer);
      break;
    }
  }
  ex.answer = num(answer);
  return ex;
}

// MBPP-like: the output of a two-step string program.
KshotExample task_string(Rng& rng) {
  struct Op {
    std::string name;
    std::function<std::string(const std::string&)> apply;
    std::string says;  // "{x}{says}{y}."
  };
  const std::vector<Op> ops = {
      {"reverse", reversed, " backwards is "}, {"upper", upper, " in capitals is "}, {"sort", sorted, " sorted is "}};
  KshotExample ex;
  std::string value, call, rationale;
  if (rng.below(3) == 0) {
    std::string list, spelled;
    for (int i = 0; i < 3; ++i) {
      const std::string w = string_word(rng, 5);
      list += (i ? " " : "") + w;
      value += w[0];
      spelled += (i ? ", " : "") + std::string(1, w[0]);
    }
    call = "initials(\"" + list + "\")";
    rationale = "The first letters are " + spelled + ".";
  } else {
    const Op& first = rng.pick(ops);
    const std::string w = string_word(rng, 5);
    call = first.name + "(\"" + w + "\")";
    value = first.apply(w);
    rationale = w + first.says + value + ".";
  }
  const Op* second = &rng.pick(ops);
  while (call.starts_with(second->name + "(")) second = &rng.pick(ops);
  const std::string out = second->apply(value);
  ex.instruction = "What is " + second->name + "(" + call + ")?";
  ex.rationale = rationale + " " + value + second->says + out + ".";
  ex.answer = out;
  return ex;
}

struct TaskSpec {
  std::string name, family, answer_type, answer_regex;
  int64_t n_choices;
  TaskGenerator generate;
};

std::vector<TaskSpec> tasks_list() {
  return {{"mc", "mc", "choice", "", 4, task_mc},
          {"yesno", "yesno", "yesno", "", 0, task_yesno},
          {"math", "arith", "number", "", 0, task_math},
          {"string", "string", "regex", "answer is (\\S+?)\\.?(?:\\s|$)", 0, task_string}};
}

std::string choices_text(const KshotExample& ex) {
  return choice_block(ex.choices);
}

// Draws `count` samples whose `key` is new to `seen` (and adds them); after 50 fruitless
// draws per sample, repeats are allowed when `allow_repeats`, else it throws.
template <typename T, typename Draw, typename Key>
std::vector<T> draw_distinct(int64_t count, std::set<std::string>& seen, bool allow_repeats, const std::string& what,
                             Draw&& draw, Key&& key) {
  std::vector<T> out;
  int64_t misses = 0;
  while (static_cast<int64_t>(out.size()) < count) {
    T s = draw();
    if (!seen.insert(key(s)).second) {
      if (++misses <= 50 * count) continue;
      if (!allow_repeats) {
        throw std::runtime_error("task suite: " + what + " has fewer than " + std::to_string(count) +
                                 " distinct examples; lower --kshot/--validation/--test/--kshot-draws");
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::string task_suite_question(const std::string& instruction, const std::string& input) {
  return input.empty() ? instruction : instruction + "\n" + input;
}

void task_suite_validate(const TaskSuiteOptions& o) {
  const auto check = [](int64_t v, int64_t hi, const char* name) {
    if (v < 1 || v > hi) {
      throw std::invalid_argument(std::string("--")
                                      .append(name)
                                      .append(" must be in [1, ")
                                      .append(std::to_string(hi) + "], not " + std::to_string(v)));
    }
  };
  check(o.samples_per_dataset, 1000000, "samples-per-dataset");
  check(o.kshot, 1000, "kshot");
  check(o.test, 10000, "test");
  check(o.validation, 10000, "validation");
  check(o.kshot_draws, 100, "kshot-draws");
  check(o.pretrain_docs, 10000000, "pretrain-docs");
}

TaskSuite task_suite_generate(const TaskSuiteOptions& options) {
  task_suite_validate(options);
  TaskSuite out;
  out.options = options;
  out.families = families_list();
  std::set<std::string> open_questions;
  for (const auto& spec : datasets_list()) {
    SuiteDataset d;
    d.family = spec.family;
    d.name = spec.family + "." + spec.name;
    Rng rng = rng_for(options.seed, "open/" + d.name);
    std::set<std::string> seen;
    d.samples = draw_distinct<OpenSample>(
        options.samples_per_dataset, seen, true, d.name, [&] { return spec.generate(rng); },
        [](const OpenSample& s) { return s.instruction + "\n" + s.input + "\n" + s.output; });
    for (const auto& s : d.samples) open_questions.insert(task_suite_question(s.instruction, s.input));
    out.datasets.push_back(std::move(d));
  }
  for (const auto& spec : tasks_list()) {
    SuiteTask t{spec.name, spec.family, spec.answer_type, spec.answer_regex, spec.n_choices, {}, {}, {}};
    Rng rng = rng_for(options.seed, "task/" + t.name);
    // Seeding `seen` with every open question keeps task questions out of the open data.
    std::set<std::string> seen = open_questions;
    const auto draw = [&](int64_t count, const std::string& split) {
      auto examples = draw_distinct<KshotExample>(
          count, seen, false, "task " + t.name, [&] { return spec.generate(rng); },
          [](const KshotExample& e) { return task_suite_question(e.instruction + choices_text(e), e.input); });
      for (size_t i = 0; i < examples.size(); ++i) {
        std::string id = std::to_string(i + 1);
        id.insert(0, 4 - std::min<size_t>(4, id.size()), '0');
        examples[i].id = t.name + "-" + split + "-" + id;
      }
      return examples;
    };
    t.test = draw(options.test, "test");
    t.validation = draw(options.validation, "val");
    for (int64_t d = 0; d < options.kshot_draws; ++d)
      t.kshot_draws.push_back(draw(options.kshot, d == 0 ? std::string("kshot") : "kshot" + std::to_string(d)));
    out.tasks.push_back(std::move(t));
  }
  suite::Rng rng = suite::rng_for(options.seed, "pretrain");
  out.pretrain = suite::pretrain_generate(rng, options.pretrain_docs);
  return out;
}

}  // namespace kmoe
