// The interpreter's semantics, each expectation worked out by hand from Jinja2/Python rules.
#include "aero/chat/template.h"
#include "aero/error.h"
#include "test_support.h"

namespace aero::chat {
namespace {

std::string render(const std::string& src, const Json& ctx = Json::object()) { return Template(src).render(ctx); }

TEST(Jinja, LoopVariables) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}|{% endfor %}",
                   {{"xs", {"a", "b"}}}),
            "102TrueFalse|211FalseTrue|");
  EXPECT_EQ(render("{% for x in xs if x > 1 %}{{ x }}/{{ loop.length }} {% else %}none{% endfor %}", {{"xs", {1, 2, 3}}}),
            "2/2 3/2 ");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "b=1;a=2;");
  EXPECT_EQ(render("{% for x in range(5) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% for x in 'ab' %}{{ loop.cycle('o', 'e') }}{{ x }}{% endfor %}"), "oaeb");
}

TEST(Jinja, ScopesAndNamespaces) {
  // A set inside a loop does not leak; a namespace attribute does.
  EXPECT_EQ(render("{% set n = 0 %}{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set n = n + i %}"
                   "{% set ns.n = ns.n + i %}{% endfor %}{{ n }} {{ ns.n }}"),
            "0 6");
  EXPECT_EQ(render("{% if true %}{% set y = 'in' %}{% endif %}{{ y }}"), "in");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set block %}x{{ 1 + 1 }}{% endset %}[{{ block }}]"), "[x2]");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('a') }} {{ greet('b', punct='?') }} {{ greet(name='c') }}"),
            "Hi a! Hi b? Hi c!");
  EXPECT_EQ(render("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}in{% endcall %}"), "<in>");
}

TEST(Jinja, WhitespaceControlAsTransformersConfiguresIt) {
  // trim_blocks: newline after a block tag goes; lstrip_blocks: indentation before it goes.
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");
  EXPECT_EQ(render("a  {{- ' b ' -}}  c"), "a b c");
  EXPECT_EQ(render("x {#- comment -#} y"), "xy");
  EXPECT_EQ(render("{{ 'x' }}\ny"), "x\ny");  // expression tags keep their newline
  EXPECT_EQ(render("{{ '}}' }}{{ \"%}\" }}"), "}}%}");
}

TEST(Jinja, ExpressionsFollowPython) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }}"),
            "3 -4 1 2 3.5 1024 7");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ [1] + [2] }} {{ 'ab' * 2 }} {{ '%s-%d' % ('x', 3) }}"), "a1None [1, 2] abab x-3");
  EXPECT_EQ(render("{{ 'yes' if 1 in [1, 2] else 'no' }} {{ 'b' not in 'abc' }} {{ x is defined }} {{ none is none }}"),
            "yes False False True");
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not [] }}"), "x y True");
  EXPECT_EQ(render("{{ [1, 2, 3][::-1] }} {{ 'héllo'[1:3] }} {{ 'abc'[-1] }} {{ [1,2,3][1:] }}"), "[3, 2, 1] él c [2, 3]");
  EXPECT_EQ(render("{{ {'a': 1}['a'] }} {{ d.missing is defined }} {{ d.missing.deeper is defined }}", {{"d", Json::object()}}),
            "1 False False");
  EXPECT_EQ(render("{{ true }} {{ 1.0 }} {{ 2.5e0 if false else 0.1 }} {{ none }}"), "True 1.0 0.1 None");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(render("{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nq'.lstrip('\\n') }}|{{ 'a b  c'.split() }}"),
            "x|a|q|['a', 'b', 'c']");
  EXPECT_EQ(render("{{ 'a</t>b</t>c'.split('</t>')[-1] }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }}"),
            "c True True");
  EXPECT_EQ(render("{{ 'a/b/c'.replace('/', '-') }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }} {{ 'hello world'.title() }}"),
            "a-b-c ABab Hello World");
}

TEST(Jinja, Filters) {
  const Json ctx = {{"msgs", {{{"role", "user"}, {"c", 1}}, {{"role", "bot"}, {"c", 2}}, {{"role", "user"}, {"c", 3}}}}};
  EXPECT_EQ(render("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='c') | list }}", ctx), "[1, 3]");
  EXPECT_EQ(render("{{ msgs | rejectattr('role', 'eq', 'user') | list | length }}", ctx), "1");
  EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('even') | join(',') }} {{ [3, 1, 2] | sort | first }} {{ [1, 1, 2] | unique | list }}"),
            "2,4 1 [1, 2]");
  EXPECT_EQ(render("{{ x | default('d') }} {{ '' | default('e', true) }} {{ ' t ' | trim }} {{ 'ab' | length }}"), "d e t 2");
  EXPECT_EQ(render("{{ 'a\\nb' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}"), "a\n  b|  a\n  b");
  EXPECT_EQ(render("{{ d | tojson }}", {{"d", {{"b", {1, "é\"\n"}}, {"a", nullptr}}}}), "{\"b\": [1, \"é\\\"\\n\"], \"a\": null}");
  EXPECT_EQ(render("{{ d | tojson(indent=2) }}", {{"d", {{"k", {1}}}}}), "{\n  \"k\": [\n    1\n  ]\n}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | dictsort | first | first }} {{ '3' | int + 1 }} {{ [1, 2] | sum }}"), "a 4 3");
}

TEST(Jinja, ErrorsAreClearAndCarryTheLine) {
  try {
    render("line1\n{{ raise_exception('no system role') }}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no system role"), std::string::npos);
  }
  try {
    Template("a\nb\n{% if x %}\n{% endfor %}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chat template"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Template("{{ 1 + }}"), Error);
  EXPECT_THROW(Template("{% frobnicate %}"), Error);
  EXPECT_THROW(Template("{{ 'open"), Error);
  EXPECT_THROW(Template("{{ 99999999999999999999999 }}"), Error);  // found by fuzz_chat_template
  EXPECT_THROW(Template("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}"), Error);
  EXPECT_EQ(render("{{ " + std::string(20, '(') + "1" + std::string(20, ')') + " }}"), "1");
  EXPECT_THROW(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"), Error);
  EXPECT_THROW(render("{{ x | nosuchfilter }}"), Error);
  EXPECT_THROW(render("{{ 1 + 'a' }}"), Error);
  EXPECT_THROW(render("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"), Error);
}

}  // namespace
}  // namespace aero::chat
