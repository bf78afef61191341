// Unit tests of the Jinja interpreter (data/tokenizers/jinja.h) and of the chat templates built
// on it. Every expected string in the tables is what jinja2 3.1.6 renders in transformers'
// environment (trim_blocks, lstrip_blocks) for the same template and context, pinned here;
// tests/parity/tokenizer_parity_test.cpp renders real models' templates against transformers.
#include "data/tokenizers/chat_template.h"

#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "data/tokenizers/jinja.h"

namespace kmoe {
namespace {

using nlohmann::ordered_json;

struct Case {
  const char* source;
  const char* expected;
};

// The context of every table: a system turn, a user turn with surrounding whitespace, an
// assistant turn, and a non-ASCII user turn.
ordered_json context() {
  return {{"messages",
           {{{"role", "system"}, {"content", "Be brief."}},
            {{"role", "user"}, {"content", " Hi \n"}},
            {{"role", "assistant"}, {"content", "Hello."}},
            {{"role", "user"}, {"content", "Ünï 😀"}}}},
          {"add_generation_prompt", true},
          {"bos_token", "<s>"},
          {"eos_token", "</s>"},
          {"tools", nullptr},
          {"documents", nullptr}};
}

std::string render(const std::string& source, const ordered_json& ctx = context()) {
  return jinja::Template(source).render(ctx);
}

void expect_table(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    try {
      EXPECT_EQ(render(c.source), c.expected) << c.source;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.source << " threw " << e.what();
    }
  }
}

// The message of what `source` throws, checking its type.
template <typename E>
std::string render_error_of(const std::string& source, const ordered_json& ctx = context()) {
  try {
    render(source, ctx);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << source << " threw the wrong kind of error: " << e.what();
    return "";
  }
  ADD_FAILURE() << source << " did not throw";
  return "";
}

TEST(Jinja, ExpressionsEvaluateAsPython) {
  expect_table({
      {"{{ 1 }} {{ 1.5 }} {{ 2.0 }} {{ 1e3 }} {{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }}",
       "1 1.5 2.0 1000.0 1000 31 5 15"},
      {"{{ 'a\\nb\\t\\x41\\u00e9\\\\' }}|{{ \"it's\" }}|{{ 'it\\'s' }}|{{ 'a' 'b' }}", "a\nb\tAé\\|it's|it's|ab"},
      {"{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", "True True False None None"},
      {"{{ [1, 'a', \"b'c\", none, true, 1.5, [2]] }} {{ {'k': 'v', 'n': 1} }} {{ (1,) }} {{ (1, 2) }}",
       "[1, 'a', \"b'c\", None, True, 1.5, [2]] {'k': 'v', 'n': 1} (1,) (1, 2)"},
      {"{{ 10 / 4 }} {{ 10 // 4 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} "
       "{{ -7.5 % 2 }}",
       "2.5 2 -4 2 -2 1024 0.5 3.0 0.5"},
      {"{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ -0.0 }}",
       "0.30000000000000004 0.3333333333333333 1e+16 1000000000000000.0 1e-05 0.0001 -0.0"},
      {"{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 1 + true }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }}",
       "ababab [1, 1] [1, 2] 2 4 64"},
      {"{{ 'a' ~ 1 ~ none ~ nothing ~ true }}", "a1NoneTrue"},
      {"{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ (1, 2) == [1, 2] }} {{ "
       "{'a': 1} == {'a': 1} }}",
       "True False True True True False True"},
      {"{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 'x' in nothing }}",
       "True True True True False"},
      {"{{ not 1 }} {{ not 0 }} {{ 0 or 'x' }} {{ 1 and 'y' }} {{ 0 and 'z' }} {{ none or [] }}",
       "False True x y 0 []"},
      {"{{ 1 if true else 2 }} {{ 1 if false else 2 }} [{{ 1 if false }}]", "1 2 []"},
      {"{{ messages[0].role }} {{ messages[1]['content'] }} {{ messages[-1].content }} [{{ messages[0].nope }}] [{{ "
       "messages[9] }}]",
       "system  Hi \n Ünï 😀 [] []"},
      {"{{ 'abc'[1] }} {{ 'abc'[-1] }} {{ 'abc'[1:] }} {{ 'abc'[::-1] }} {{ 'abcdef'[1:5:2] }} {{ 'héllo'[1:3] }} {{ "
       "messages[-1].content[-1] }}",
       "b c bc cba bd él 😀"},
      {"{{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3][::-1] }} {{ [1, 2, 3][-2:] }} {{ [1, 2, 3][:-1] }} {{ [1, 2, 3][:10] }}",
       "[2, 3, 4] [3, 2, 1] [2, 3] [1, 2] [1, 2, 3]"},
      {"{{ messages | length }} {{ messages[-1].content | length }} {{ range(3) | list }} {{ range(1, 7, 2) | list }} "
       "{{ range(3, 0, -1) | list }}",
       "4 5 [0, 1, 2] [1, 3, 5] [3, 2, 1]"},
      {"{{ {'a': {'b': [1, {'c': 2}]}}['a'].b[1].c }}", "2"},
      {"{{ 1, 2 }}", "(1, 2)"},
  });
}

TEST(Jinja, StatementsAndScopingAsJinja2) {
  expect_table({
      {"{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ "
       "loop.revindex }}{{ loop.revindex0 }}|{% endfor %}",
       "10TrueFalse443|21FalseFalse432|32FalseFalse421|43FalseTrue410|"},
      {"{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}{{ loop.nextitem is "
       "defined }}{{ loop.cycle('a', 'b') }} {% endfor %}",
       "-Truea systemTrueb userTruea assistantFalseb "},
      {"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% "
       "endfor %}",
       "a=1;b=2;xy"},
      {"{% for c in 'héy' %}[{{ c }}]{% endfor %}{% for x in [] %}a{% else %}empty{% endfor %}{% for x in nothing "
       "%}a{% else %}none{% endfor %}",
       "[h][é][y]emptynone"},
      {"{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}", "2/2 4/2 "},
      {"{% for x in [1, 2, 3, 4] %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %} {% for x in [1, 2, 3, 4] "
       "%}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}",
       "12 24"},
      {"{% for i in [1, 2, 3] %}{% if loop.first %}{% set x = 5 %}{% endif %}[{{ x }}]{% endfor %}[{{ x }}]",
       "[5][][][]"},
      {"{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", "12121"},
      {"{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'assistant' %}{% set ns.found "
       "= true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }} {{ ns.n }}",
       "True 4"},
      {"{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }} {{ ns.b is defined }}", "x False"},
      {"{% if 0 %}a{% elif '' %}b{% elif [1] %}c{% else %}d{% endif %}{% if nothing %}e{% else %}f{% endif %}", "cf"},
      {"{% set a, b = [1, 2] %}{% set c, d = 3, 4 %}{{ a }}{{ b }}{{ c }}{{ d }}", "1234"},
      {"{% set x %}in {{ 1 }} block{% endset %}[{{ x }}]{% set y | upper %}shout{% endset %}{{ y }}",
       "[in 1 block]SHOUT"},
      {"{% macro greet(name, p='Hi') %}{{ p }} {{ name }}!{% endmacro %}{{ greet('A') }} {{ greet('B', p='Yo') }} {{ "
       "greet(name='C') }}",
       "Hi A! Yo B! Hi C!"},
      {"{% macro m(a) %}{{ a }} {{ varargs }} {{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", "1 (2, 3) {'k': 4}"},
      {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}",
       "120"},
      {"{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]{% filter upper %}abc {{ 'd' }}{% endfilter %}{% "
       "generation %} gen{% endgeneration %}",
       "3[]ABC D gen"},
      {"{% set messages = messages[1:] %}{{ messages | length }}{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor "
       "%}",
       "3uau"},
      {"{{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", "{'a': 1, 'b': 'x'} 1"},
  });
}

TEST(Jinja, WhitespaceControlWithTrimAndLstripBlocks) {
  expect_table({
      {"  {% if true %}\n  x\n  {% endif %}\n  {{ 'y' }}\n", "  x\n  y"},
      {"a\n  {%- if true -%}\n  b  \n  {%- endif -%}\n  c", "abc"},
      {"a {{- ' b ' -}} c", "a b c"},
      {"{% if true %}x{% endif %}\ny", "xy"},
      {"{% if true +%}\nx{%+ endif %}  ", "\nx  "},
      {"line\n    {# c #}\nafter", "line\nafter"},
      {"  {{ 'v' }}  {% if 1 %}  z {% endif %}", "  v    z "},
      {"a\n\t{% if 1 %}t{% endif %}", "a\nt"},
      {"\n\n{% for m in [1, 2] %}\n  {{ m }}\n{% endfor %}\n", "\n\n  1\n  2\n"},
      {"x  {%- if 1 %} y {% endif -%}  \n\nz", "x y z"},
      {"a{#- x -#}  b|a  {#+ x +#}\nb", "ab|a  \nb"},
      {"text\r\nmore\r\n{% if 1 %}\r\nq{% endif %}", "text\nmore\nq"},
      {"ends with one newline\n", "ends with one newline"},
      {" {% if 1 %}a{% endif %} b", "a b"},
      {"x\n  {% if 1 %}a{% endif %}\n  {{ 1 }}", "x\na  1"},
      {"{{ 1 }}  {% if 1 %}a{% endif %}", "1  a"},
  });
}

TEST(Jinja, FiltersAndStringMethods) {
  expect_table({
      {"[{{ '  x  ' | trim }}] [{{ 'xxhixx' | trim('x') }}] [{{ none | trim }}] [{{ nothing | trim }}] [{{ "
       "messages[1].content | trim }}]",
       "[x] [hi] [None] [] [Hi]"},
      {"{{ 'hello World' | upper }} {{ 'HeLLo' | lower }} {{ 'hello world' | capitalize }} {{ 'hello wORLD-foo (bar) "
       "o\\'neil' | title }}",
       "HELLO WORLD hello Hello world Hello World-Foo (Bar) O'neil"},
      {"{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | first }} {{ 'abc' | last }} [{{ [] | first }}]",
       "1 3 a c []"},
      {"{{ [1, 2, 3] | join(', ') }} {{ ['a', 'b'] | join }} {{ messages | join('|', attribute='role') }}",
       "1, 2, 3 ab system|user|assistant|user"},
      {"{{ x | default('dflt') }} [{{ '' | default('e') }}] {{ '' | default('e', true) }} {{ none | d('n') }} {{ 0 | "
       "d('z', boolean=true) }}",
       "dflt [] e None z"},
      {"{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'abc' | replace('', '-') }}",
       "bbb bba -a-b-c-"},
      {"{{ messages[:2] | tojson }}",
       "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \" Hi \\n\"}]"},
      {"{{ messages[0] | tojson(indent=2) }}", "{\n  \"role\": \"system\",\n  \"content\": \"Be brief.\"\n}"},
      {"{{ {'b': 1, 'a': [1, 2.5, none, true, 'é\"\\n\\u0001']} | tojson }} {{ {'b': 1, 'a': 2} | "
       "tojson(sort_keys=true) }} {{ 'é' | tojson(ensure_ascii=true) }}",
       "{\"b\": 1, \"a\": [1, 2.5, null, true, \"é\\\"\\n\\u0001\"]} {\"a\": 2, \"b\": 1} \"\\u00e9\""},
      {"{{ [1, [2, {}], []] | tojson(indent=4) }} {{ {'a': 1} | tojson(separators=(',', ':')) }}",
       "[\n    1,\n    [\n        2,\n        {}\n    ],\n    []\n] {\"a\":1}"},
      {"{{ 1 | string }} {{ none | string }} {{ [1] | string }} {{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ "
       "'x' | int(7) }} {{ 3.9 | int }} {{ '1.5' | float }}",
       "1 None [1] 42 4 0 7 3 1.5"},
      {"{{ 'ab' | list }} {{ {'a': 1} | list }} {{ {'a': 1, 'b': 2} | items | list }}",
       "['a', 'b'] ['a'] [('a', 1), ('b', 2)]"},
      {"{{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | rejectattr('role', 'eq', "
       "'user') | map(attribute='content') | list }}",
       "2 ['Be brief.', 'Hello.']"},
      {"{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ [0, 1, '', 2] | select "
       "| list }} {{ ['a', 'B'] | map('upper') | list }}",
       "[1, 3] [2, 4] [1, 2] ['A', 'B']"},
      {"{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}",
       "a\n    b\n\n    c|  a\n  b|a\n  \n  b"},
      {"{{ '<a&b>' | e }} {{ '<y>' | safe }} {{ ['a', 'A', 'b', 'a'] | unique | list }} {{ [3, 1, 2] | sort }} {{ "
       "['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }}",
       "&lt;a&amp;b&gt; <y> ['a', 'b'] [1, 2, 3] ['A', 'b', 'c'] [3, 2, 1]"},
      {"{{ [1, 2, 3] | sum }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ -3 | abs }} {{ 2.5 | round }} {{ 2.675 | "
       "round(2) }} {{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }}",
       "6 3 1 3 2.0 2.67 [3, 2, 1] cba"},
      {"{{ {'b': 1, 'a': 2} | dictsort }} {{ 'abc' | count }} {{ 'straße' | upper }} {{ 'ΑΒΓ' | lower }} {{ 'привет' | "
       "upper }}",
       "[('a', 2), ('b', 1)] 3 STRASSE αβγ ПРИВЕТ"},
      {"[{{ '  a b  '.strip() }}] [{{ '  a '.lstrip() }}] [{{ ' a  '.rstrip() }}] {{ 'xxaxx'.strip('x') }} {{ "
       "'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }}",
       "[a b] [a ] [ a] a ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c']"},
      {"{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ "
       "'Hi'.upper() }} {{ 'Hi'.lower() }} {{ 'hello wORLD o\\'neil'.title() }} {{ 'hELLO'.capitalize() }}",
       "True True True HI hi Hello World O'Neil Hello"},
      {"{{ 'aXbX'.replace('X', '-') }} {{ 'aXbX'.replace('X', '-', 1) }} {{ 'héllo'.find('l') }} {{ 'abcb'.count('b') "
       "}} {{ '-'.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }}",
       "a-b- a-bX 2 2 a-b ['a', 'b', 'c']"},
      {"{{ messages[0].get('role') }} {{ messages[0].get('nope') }} {{ messages[0].get('nope', 'd') }} {{ "
       "messages[0].keys() | list }} {{ messages[0].values() | list }}",
       "system None d ['role', 'content'] ['system', 'Be brief.']"},
  });
}

TEST(Jinja, Tests) {
  expect_table({
      {"{{ 5 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }}", "True True True False"},
      {"{{ 1 is number }} {{ true is number }} {{ 1.0 is float }} {{ 1 is integer }} {{ true is integer }} {{ true is "
       "boolean }} {{ 1 is true }} {{ true is true }} {{ false is false }}",
       "True True True True False True False True True"},
      {"{{ 'a' is string }} {{ {} is mapping }} {{ [] is mapping }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ x is "
       "iterable }} {{ [] is sequence }} {{ none is none }}",
       "True True False True False True True True"},
      {"{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 1 is lt 2 }} {{ 1 is "
       "le 0 }} {{ 1 is in [1] }} {{ 'ab' is lower }} {{ 'AB' is upper }}",
       "True False True True True True False True True True"},
      {"{{ x is defined }} {{ x is undefined }} {{ messages is defined }} {{ tools is none }} {{ tools is defined }} "
       "{{ unk_token is defined }} {{ 'x' is not none }} {{ not x is defined }}",
       "False True True True True False True True"},
      {"{{ messages[0].content is string and messages[0].content.strip() != '' }} {{ 'a'.content is defined }} {{ "
       "'trim' is filter }} {{ 'odd' is test }}",
       "True False True True"},
  });
}

TEST(Jinja, ToolsKeepTheirKeyOrderInTojson) {
  const ordered_json tools = ordered_json::parse(
      R"([{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": [true, null, 2.5]}}}])");
  ordered_json ctx = context();
  ctx["tools"] = tools;
  EXPECT_EQ(render("{% for t in tools %}{{ t | tojson }}{% endfor %}", ctx),
            R"({"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": [true, null, 2.5]}}})");
}

TEST(Jinja, RefusalsNameTheConstructAndTheLine) {
  const std::vector<std::pair<const char*, const char*>> refused = {
      {"{{ 'a' | wordwrap }}", "chat template line 1: filter 'wordwrap' is not supported"},
      {"\n\n{{ x is foo }}", "chat template line 3: test 'foo' is not supported"},
      {"{% include 'x' %}", "chat template line 1: statement 'include' is not supported"},
      {"a\n{% raw %}{{ x }}{% endraw %}", "chat template line 2: statement 'raw' is not supported"},
      {"{% call foo() %}{% endcall %}", "chat template line 1: statement 'call' is not supported"},
      {"{% for x in y recursive %}{% endfor %}", "chat template line 1: recursive for loops is not supported"},
      {"{{ 'a'.zfill(3) }}", "chat template line 1: str method 'zfill' is not supported"},
      {"{{ 'a {}'.format(1) }}", "chat template line 1: str method 'format' is not supported"},
      {"{{ '%s' % 'x' }}", "chat template line 1: '%' string formatting is not supported"},
      {"{{ messages.append(1) }}", "chat template line 1: list method 'append' is not supported"},
      {"{{ cycler() }}", "chat template line 1: global 'cycler' is not supported"},
      {"{{ messages | map(attribute='role') }}",
       "chat template line 1: printing a generator object (Python prints its address) is not supported"},
      {"{{ ('<b>' | safe) + 'x' }}",
       "chat template line 1: '+' with a Markup string (from |safe or |escape) is not supported"},
      {"{{ 'Ǆ' | lower }}",
       "chat template line 1: lower-casing of text with 'Ǆ' (kmoe maps case for Latin, Greek and Cyrillic only) is "
       "not supported"},
  };
  for (const auto& [source, message] : refused)
    EXPECT_EQ(render_error_of<jinja::Unsupported>(source), message) << source;
}

TEST(Jinja, PythonErrorsThrowWithTheLine) {
  EXPECT_EQ(render_error_of<jinja::Error>("{{ nothing + 1 }}"), "chat template line 1: 'nothing' is undefined");
  EXPECT_EQ(render_error_of<jinja::Error>("\n{{ nothing.x }}"), "chat template line 2: 'nothing' is undefined");
  EXPECT_EQ(render_error_of<jinja::Error>("{{ messages[9].role }}"),
            "chat template line 1: 'list object' has no element 9");
  EXPECT_EQ(render_error_of<jinja::Error>("{{ 'a' + 1 }}"),
            "chat template line 1: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error_of<jinja::Error>("{{ 1 < 'a' }}"),
            "chat template line 1: '<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(render_error_of<jinja::Error>("{{ nothing | tojson }}"),
            "chat template line 1: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(render_error_of<jinja::Error>("{% for a, b in [[1, 2, 3]] %}{% endfor %}"),
            "chat template line 1: too many values to unpack (expected 2)");
  EXPECT_EQ(render_error_of<jinja::Error>("{% if 1 %}no end"),
            "chat template line 1: unexpected end of template, expected 'elif' or 'else' or 'endif'");
  EXPECT_EQ(render_error_of<jinja::Error>("{{ [1, 2 }}"), "chat template line 1: unexpected '}', expected ']'");
  EXPECT_EQ(render_error_of<jinja::Error>("{% break %}"), "chat template line 1: 'break' outside a for loop");
}

// Found by tests/fuzz/jinja_fuzz.cpp: nesting 20,000 parentheses or 5,000 if-blocks deep
// overflowed the stack. Deeper than 200 levels is now an Error (jinja2 ends such templates
// with a RecursionError); 150 levels still render.
TEST(Jinja, NestingDepthIsBoundedNotAStackOverflow) {
  const auto nested = [](const std::string& open, const std::string& mid, const std::string& close, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += open;
    s += mid;
    for (int i = 0; i < n; ++i) s += close;
    return s;
  };
  EXPECT_EQ(render("{{ " + nested("(", "1", ")", 150) + " }}"), "1");
  EXPECT_EQ(render(nested("{% if true %}", "x", "{% endif %}", 150)), "x");
  EXPECT_EQ(render("{{ " + nested("not ", "false", "", 151) + " }}"), "True");
  const std::string deep = "nesting deeper than 200 levels";
  EXPECT_NE(render_error_of<jinja::Error>("{{ " + nested("(", "1", ")", 20000) + " }}").find(deep), std::string::npos);
  EXPECT_NE(render_error_of<jinja::Error>(nested("{% if true %}", "x", "{% endif %}", 5000)).find(deep),
            std::string::npos);
  EXPECT_NE(render_error_of<jinja::Error>("{{ " + nested("-", "1", "", 5000) + " }}").find(deep), std::string::npos);
  // Loops that wrap their expression once per round build trees as deep: a + b + ..., x|f|g...,
  // a[0][0]..., 1 if c if c ...: each round counts as a level.
  EXPECT_EQ(render("{{ 1" + nested("", "", "+1", 150) + " }}"), "151");
  for (const std::string chain : {"+1", "|trim", "[0]", " if true"}) {
    const std::string base = chain == "[0]" ? "messages" : chain == "|trim" ? "'a'" : "1";
    EXPECT_NE(render_error_of<jinja::Error>("{{ " + base + nested("", "", chain, 50000) + " }}").find(deep),
              std::string::npos)
        << chain;
  }
}

TEST(Jinja, RaiseExceptionThrowsTheTemplatesMessage) {
  EXPECT_EQ(
      render_error_of<jinja::Raised>("{% if messages[0].role == 'system' %}\n{{ raise_exception('No ' ~ 'system') }}"
                                     "{% endif %}"),
      "chat template line 2 raised: No system");
}

TEST(Jinja, StrftimeNowFormatsTheLocalTime) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char year[8];
  std::strftime(year, sizeof year, "%Y", &tm);
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), year);  // a test at midnight on New Year's Eve may see two years
}

// ---- chat templates ----

const char* const kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, SmolLM2InsertsItsDefaultSystemTurn) {
  const ChatTemplate t = chat_template_make(kSmolLM2Template, "<|im_start|>", "<|im_end|>");
  EXPECT_EQ(chat_render(t, {{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat_render(t, {{"system", "S"}, {"user", "Hi"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, QwenStyleDefaultSystemTurnComesFromTheTemplate) {
  const ChatTemplate t = chat_template_make(
      "{%- if messages[0]['role'] == 'system' %}\n"
      "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
      "{%- else %}\n"
      "    {{- '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}\n"
      "{%- endif %}\n"
      "{%- for message in messages %}\n"
      "    {%- if message.role != 'system' %}\n"
      "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
      "    {%- endif %}\n"
      "{%- endfor %}\n"
      "{%- if add_generation_prompt %}\n"
      "    {{- '<|im_start|>assistant\\n' }}\n"
      "{%- endif %}\n",
      "", "<|im_end|>");
  EXPECT_EQ(chat_render(t, {{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama2UsesTheTokenizersBosAndEos) {
  ChatTemplate t = chat_format_parse("llama2");
  EXPECT_EQ(chat_render(t, {{"system", "S"}, {"user", " Q1 "}, {"assistant", "A1"}, {"user", "Q2"}}, true),
            // Meta's template strips after prepending the system block: Q1's leading space stays
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
  t = chat_template_make(t.source, "<BOS>", "<EOS>");
  EXPECT_EQ(chat_render(t, {{"user", "Q"}, {"assistant", "A"}}, false), "<BOS>[INST] Q [/INST] A <EOS>");
  EXPECT_THROW(chat_render(t, {{"user", "a"}, {"user", "b"}}, false), jinja::Raised);
  EXPECT_THROW(chat_render(t, {{"assistant", "a"}}, false), std::runtime_error);
}

TEST(ChatTemplate, MistralV7HasNoSpaceBeforeTheInstEnd) {
  const ChatTemplate t = chat_template_make(
      "{{- bos_token }}{%- for message in messages %}{%- if message['role'] == 'user' %}"
      "{{- '[INST]' + message['content'] + '[/INST]' }}{%- elif message['role'] == 'system' %}"
      "{{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}{%- elif message['role'] == 'assistant' %}"
      "{{- message['content'] + eos_token }}{%- endif %}{%- endfor %}",
      "<s>", "</s>");
  EXPECT_EQ(chat_render(t, {{"system", "S"}, {"user", "Q"}, {"assistant", "A"}}, false),
            "<s>[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]Q[/INST]A</s>");
}

TEST(ChatTemplate, Llama3TrimsContentAndOpensTheAssistantTurn) {
  EXPECT_EQ(chat_render(chat_format_parse("llama3"), {{"user", " Hi \n"}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, AbsentBosTokenIsUndefined) {
  const ChatTemplate t = chat_template_make("{{ bos_token is defined }}|{{ bos_token }}|{{ eos_token }}", "", "E");
  EXPECT_EQ(chat_render(t, {}, false), "False||E");
}

TEST(ChatTemplate, JsonMessagesCarryToolCalls) {
  const ChatTemplate t = chat_template_make(
      "{% for m in messages %}{% for c in m.tool_calls %}{{ c.function.name }}{{ c.function.arguments | tojson }}"
      "{% endfor %}{% endfor %}{{ tools | length }}",
      "", "");
  const auto messages = ordered_json::parse(
      R"([{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": 2}}}]}])");
  EXPECT_EQ(chat_render_json(t, messages, false, ordered_json::parse("[{}, {}]")), R"(f{"b": 1, "a": 2}2)");
}

TEST(ChatTemplate, TurnEndTokensComeFromTheTemplateThenEos) {
  EXPECT_EQ(chat_turn_end_tokens(chat_format_parse("chatml")), (std::vector<std::string>{"<|im_end|>"}));
  EXPECT_EQ(chat_turn_end_tokens(chat_format_parse("llama3")), (std::vector<std::string>{"<|eot_id|>"}));
  EXPECT_EQ(chat_turn_end_tokens(chat_format_parse("llama2")), (std::vector<std::string>{"</s>"}));
  EXPECT_EQ(chat_turn_end_tokens(chat_template_make("{{ '<|user|>' }}<|end|>{{ eos_token }}", "", "<|endoftext|>")),
            (std::vector<std::string>{"<|end|>", "<|endoftext|>"}));
}

TEST(ChatTemplate, BadInputIsRejected) {
  EXPECT_THROW(chat_format_parse("alpaca"), std::runtime_error);
  EXPECT_THROW(chat_template_make("{% for %}", "", ""), jinja::Error);
  EXPECT_THROW(chat_template_make("{{ x | wordwrap }}", "", ""), jinja::Unsupported);
  EXPECT_THROW(chat_render(ChatTemplate{}, {{"user", "a"}}, false), std::runtime_error);
}

}  // namespace
}  // namespace kmoe
