// Template text -> Program. Whitespace follows Jinja2 with HF's trim_blocks and lstrip_blocks:
// "-" on a tag strips all whitespace on that side; a block or comment tag alone on its line
// takes the line's indentation and its newline with it.
#include <cctype>
#include <charconv>

#include "aero/error.h"
#include "jinja_ast.h"

namespace aero::chat::jinja {

namespace {

struct Segment {
  enum class Kind { Text, Expression, Statement } kind;
  std::string text;
  int line;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// The end of a tag, skipping string literals (a "}}" inside quotes does not close it).
std::size_t find_tag_end(const std::string& src, std::size_t from, const std::string& close) {
  char quote = 0;
  for (std::size_t i = from; i + 1 < src.size(); ++i) {
    const char c = src[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (src.compare(i, close.size(), close) == 0) {
      return i;
    }
  }
  return std::string::npos;
}

std::vector<Segment> split_template(const std::string& src) {
  std::vector<Segment> out;
  std::size_t pos = 0;
  int line = 1;
  bool strip_next = false;    // the previous tag ended with "-"
  bool trim_newline = false;  // the previous tag was a block/comment (trim_blocks)
  auto count_lines = [](std::string_view s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); };
  while (pos <= src.size()) {
    std::size_t open = src.find('{', pos);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' &&
           src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open != std::string::npos && open + 1 >= src.size()) open = std::string::npos;
    std::string text = src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    const int text_line = line;
    line += count_lines(text);

    if (strip_next) {
      std::size_t i = 0;
      while (i < text.size() && is_space(text[i])) ++i;
      text.erase(0, i);
    } else if (trim_newline) {
      if (text.starts_with("\n")) text.erase(0, 1);
      else if (text.starts_with("\r\n")) text.erase(0, 2);
    }
    strip_next = trim_newline = false;

    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Segment::Kind::Text, text, text_line});
      break;
    }
    const char kind = src[open + 1];
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    std::size_t inner = open + 2;
    const bool minus_before = inner < src.size() && src[inner] == '-';
    const bool plus_before = inner < src.size() && src[inner] == '+';
    if (minus_before || plus_before) ++inner;
    std::size_t end = kind == '#' ? src.find(close, inner) : find_tag_end(src, inner, close);
    if (end == std::string::npos) fail("chat template line {}: '{{{}' is never closed", line, kind);
    bool minus_after = end > inner && src[end - 1] == '-';
    std::string content = src.substr(inner, end - inner - (minus_after ? 1 : 0));

    if (minus_before) {
      while (!text.empty() && is_space(text.back())) text.pop_back();
    } else if (kind != '{' && !plus_before) {
      // lstrip_blocks: spaces and tabs between a line start and a block/comment tag go.
      std::size_t j = open;
      while (j > pos && (src[j - 1] == ' ' || src[j - 1] == '\t')) --j;
      const bool line_start = j > pos ? src[j - 1] == '\n' : j == 0;
      if (line_start) text.erase(text.size() - std::min(text.size(), open - j));
    }
    if (!text.empty()) out.push_back({Segment::Kind::Text, text, text_line});
    if (kind == '{') out.push_back({Segment::Kind::Expression, content, line});
    else if (kind == '%') out.push_back({Segment::Kind::Statement, content, line});
    line += count_lines(content);
    strip_next = minus_after;
    trim_newline = kind != '{';
    pos = end + 2;
  }
  return out;
}

// ---- expression tokens --------------------------------------------------------------------

struct Token {
  enum class Kind { Name, String, Int, Float, Op, End } kind;
  std::string text;
  std::int64_t int_value = 0;
  double float_value = 0;
};

std::vector<Token> lex(const std::string& s, int line) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (is_space(c)) {
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Token::Kind::Name, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t j = i;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      bool is_float = j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]));
      if (is_float) {
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {  // exponent: 1e3, 2.5e-1
        std::size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
          while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
          j = k;
          is_float = true;
        }
      }
      std::string digits = s.substr(i, j - i);
      std::erase(digits, '_');
      Token t{is_float ? Token::Kind::Float : Token::Kind::Int, digits};
      const char* end = digits.data() + digits.size();
      auto r = is_float ? std::from_chars(digits.data(), end, t.float_value) : std::from_chars(digits.data(), end, t.int_value);
      if (r.ec != std::errc() || r.ptr != end) fail("chat template line {}: number '{}' is out of range", line, digits);
      out.push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string value;
      std::size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) {
          value += s[j];
          continue;
        }
        char e = s[++j];
        switch (e) {
          case 'n': value += '\n'; break;
          case 't': value += '\t'; break;
          case 'r': value += '\r'; break;
          case '\\': value += '\\'; break;
          case '\'': value += '\''; break;
          case '"': value += '"'; break;
          default: value += '\\'; value += e;
        }
      }
      if (j >= s.size()) fail("chat template line {}: unterminated string", line);
      out.push_back({Token::Kind::String, value});
      i = j + 1;
    } else {
      static const char* const two[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* t : two)
        if (s.compare(i, 2, t) == 0) op = t;
      if (std::string("+-*/%~<>()[]{}.,:|=!").find(c) == std::string::npos)
        fail("chat template line {}: unexpected character '{}'", line, c);
      out.push_back({Token::Kind::Op, op});
      i += op.size();
    }
  }
  out.push_back({Token::Kind::End, ""});
  return out;
}

// ---- expressions ---------------------------------------------------------------------------

class ExprParser {
 public:
  ExprParser(std::vector<Token> tokens, int line) : t_(std::move(tokens)), line_(line) {}

  bool at_end() const { return peek().kind == Token::Kind::End; }
  const Token& peek(std::size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  bool is_op(const char* op, std::size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::Op && peek(ahead).text == op;
  }
  bool is_name(const char* name, std::size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::Name && peek(ahead).text == name;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++p_;
    return true;
  }
  bool accept_name(const char* name) {
    if (!is_name(name)) return false;
    ++p_;
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error(fmt::format("expected '{}'", op));
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::Name) error("expected a name");
    return t_[p_++].text;
  }
  [[noreturn]] void error(const std::string& what) const {
    fail("chat template line {}: {} near '{}'", line_, what, peek().kind == Token::Kind::End ? "end of tag" : peek().text);
  }
  void expect_end() {
    if (!at_end()) error("unexpected text");
  }

  ExprPtr make(Expr::Type type) { return std::make_unique<Expr>(type, line_); }

  // expression with an optional trailing tuple ("a, b" in set/for)
  ExprPtr expression() {
    ExprPtr e = ternary();
    return e;
  }

  ExprPtr ternary() {
    ExprPtr e = or_expr();
    while (accept_name("if")) {
      auto t = make(Expr::Type::Ternary);
      t->a = or_expr();  // condition
      t->b = std::move(e);
      if (accept_name("else")) t->c = ternary();
      e = std::move(t);
    }
    return e;
  }

  ExprPtr binary(ExprPtr left, std::string op, ExprPtr right) {
    auto e = make(Expr::Type::Binary);
    e->name = std::move(op);
    e->a = std::move(left);
    e->b = std::move(right);
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (accept_name("or")) e = binary(std::move(e), "or", and_expr());
    return e;
  }
  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (accept_name("and")) e = binary(std::move(e), "and", not_expr());
    return e;
  }
  ExprPtr not_expr() {
    Nest nest(*this);
    if (accept_name("not")) {
      auto e = make(Expr::Type::Unary);
      e->name = "not";
      e->a = not_expr();
      return e;
    }
    return compare();
  }
  ExprPtr compare() {
    ExprPtr e = math1();
    for (;;) {
      static const char* const ops[] = {"==", "!=", "<=", ">=", "<", ">"};
      bool matched = false;
      for (const char* op : ops)
        if (accept_op(op)) {
          e = binary(std::move(e), op, math1());
          matched = true;
          break;
        }
      if (matched) continue;
      if (accept_name("in")) {
        e = binary(std::move(e), "in", math1());
      } else if (is_name("not") && is_name("in", 1)) {
        p_ += 2;
        e = binary(std::move(e), "not in", math1());
      } else {
        return e;
      }
    }
  }
  ExprPtr math1() {
    ExprPtr e = concat();
    for (;;) {
      if (accept_op("+")) e = binary(std::move(e), "+", concat());
      else if (accept_op("-")) e = binary(std::move(e), "-", concat());
      else return e;
    }
  }
  ExprPtr concat() {
    ExprPtr e = math2();
    while (accept_op("~")) e = binary(std::move(e), "~", math2());
    return e;
  }
  ExprPtr math2() {
    ExprPtr e = power();
    for (;;) {
      if (accept_op("*")) e = binary(std::move(e), "*", power());
      else if (accept_op("//")) e = binary(std::move(e), "//", power());
      else if (accept_op("/")) e = binary(std::move(e), "/", power());
      else if (accept_op("%")) e = binary(std::move(e), "%", power());
      else return e;
    }
  }
  ExprPtr power() {
    ExprPtr e = unary();
    while (accept_op("**")) e = binary(std::move(e), "**", unary());
    return e;
  }
  ExprPtr unary() {
    Nest nest(*this);
    if (accept_op("-") || (is_op("+") && (++p_, true))) {
      const bool minus = t_[p_ - 1].text == "-";
      auto e = make(Expr::Type::Unary);
      e->name = minus ? "-" : "+";
      e->a = unary();
      return e;
    }
    return filters(postfix(primary()));
  }

  // Nesting guard: the parser recurses, and a template is untrusted input.
  struct Nest {
    int& depth;
    explicit Nest(ExprParser& p) : depth(p.depth_) {
      if (++depth > 100) p.error("expression nested too deeply");
    }
    ~Nest() { --depth; }
  };

  ExprPtr primary() {
    Nest nest(*this);
    const Token tok = peek();
    if (tok.kind == Token::Kind::String) {
      ++p_;
      std::string s = tok.text;
      while (peek().kind == Token::Kind::String) s += t_[p_++].text;  // adjacent literals join
      auto e = make(Expr::Type::Literal);
      e->literal = Value(s);
      return e;
    }
    if (tok.kind == Token::Kind::Int || tok.kind == Token::Kind::Float) {
      ++p_;
      auto e = make(Expr::Type::Literal);
      e->literal = tok.kind == Token::Kind::Int ? Value(tok.int_value) : Value(tok.float_value);
      return e;
    }
    if (tok.kind == Token::Kind::Name) {
      ++p_;
      auto e = make(Expr::Type::Literal);
      if (tok.text == "true" || tok.text == "True") e->literal = Value(true);
      else if (tok.text == "false" || tok.text == "False") e->literal = Value(false);
      else if (tok.text == "none" || tok.text == "None") e->literal = Value::none();
      else {
        e->type = Expr::Type::Name;
        e->name = tok.text;
      }
      return e;
    }
    if (accept_op("(")) {
      if (accept_op(")")) return make(Expr::Type::List);  // empty tuple
      ExprPtr e = expression();
      if (accept_op(",")) {
        auto tuple = make(Expr::Type::List);
        tuple->items.push_back(std::move(e));
        while (!is_op(")")) {
          tuple->items.push_back(expression());
          if (!accept_op(",")) break;
        }
        e = std::move(tuple);
      }
      expect_op(")");
      return e;
    }
    if (accept_op("[")) {
      auto list = make(Expr::Type::List);
      while (!is_op("]")) {
        list->items.push_back(expression());
        if (!accept_op(",")) break;
      }
      expect_op("]");
      return list;
    }
    if (accept_op("{")) {
      auto dict = make(Expr::Type::Dict);
      while (!is_op("}")) {
        dict->items.push_back(expression());
        expect_op(":");
        dict->items.push_back(expression());
        if (!accept_op(",")) break;
      }
      expect_op("}");
      return dict;
    }
    error("expected a value");
  }

  void call_args(CallArgs& args) {  // after "("
    while (!is_op(")")) {
      if (peek().kind == Token::Kind::Name && is_op("=", 1)) {
        std::string name = t_[p_].text;
        p_ += 2;
        args.named.emplace_back(name, expression());
      } else {
        args.positional.push_back(expression());
      }
      if (!accept_op(",")) break;
    }
    expect_op(")");
  }

  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (accept_op(".")) {
        auto a = make(Expr::Type::Attribute);
        a->a = std::move(e);
        if (peek().kind == Token::Kind::Int) a->name = std::to_string(t_[p_++].int_value);
        else a->name = expect_name();
        e = std::move(a);
      } else if (accept_op("[")) {
        ExprPtr start, stop, step;
        bool slice = false;
        if (!is_op(":")) start = expression();
        if (accept_op(":")) {
          slice = true;
          if (!is_op(":") && !is_op("]")) stop = expression();
          if (accept_op(":") && !is_op("]")) step = expression();
        }
        expect_op("]");
        auto s = make(slice ? Expr::Type::Slice : Expr::Type::Index);
        s->has_slice_start = start != nullptr;
        s->has_slice_stop = stop != nullptr;
        s->a = std::move(e);
        s->b = std::move(start);
        if (slice) {
          s->c = std::move(step);
          s->items.push_back(std::move(stop));
        }
        e = std::move(s);
      } else if (accept_op("(")) {
        auto c = make(Expr::Type::Call);
        c->a = std::move(e);
        call_args(c->args);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr filters(ExprPtr e) {
    for (;;) {
      if (accept_op("|")) {
        auto f = make(Expr::Type::Filter);
        f->name = expect_name();
        f->a = std::move(e);
        if (accept_op("(")) call_args(f->args);
        e = postfix(std::move(f));
      } else if (accept_name("is")) {
        auto t = make(Expr::Type::Test);
        t->negated = accept_name("not");
        t->name = expect_name();
        t->a = std::move(e);
        if (accept_op("(")) {
          call_args(t->args);
        } else {
          // One argument without parentheses: "is divisibleby 3", "is sameas none".
          const Token& n = peek();
          const bool starts_value = n.kind == Token::Kind::String || n.kind == Token::Kind::Int ||
                                    n.kind == Token::Kind::Float || is_op("[") || is_op("{") ||
                                    (n.kind == Token::Kind::Name && n.text != "and" && n.text != "or" &&
                                     n.text != "else" && n.text != "if" && n.text != "is" && n.text != "not" &&
                                     n.text != "in");
          if (starts_value) t->args.positional.push_back(postfix(primary()));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

 private:
  std::vector<Token> t_;
  std::size_t p_ = 0;
  int line_;
  int depth_ = 0;
};

// ---- statements -------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::vector<Segment> segments) : s_(std::move(segments)) {}

  Body body_until(const std::vector<std::string>& ends, std::string& which, ExprParser*& stop) {
    if (++depth_ > 100) fail("chat template: blocks nested more than 100 deep");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    Body body;
    while (i_ < s_.size()) {
      Segment& seg = s_[i_];
      if (seg.kind == Segment::Kind::Text) {
        auto n = std::make_unique<Node>(Node::Type::Text, seg.line);
        n->text = seg.text;
        body.push_back(std::move(n));
        ++i_;
        continue;
      }
      if (seg.kind == Segment::Kind::Expression) {
        ExprParser p(lex(seg.text, seg.line), seg.line);
        auto n = std::make_unique<Node>(Node::Type::Output, seg.line);
        n->expr = p.expression();
        p.expect_end();
        body.push_back(std::move(n));
        ++i_;
        continue;
      }
      // Parsers live until the end: a block's tag parser is used after its body is parsed.
      parsers_.push_back(std::make_unique<ExprParser>(lex(seg.text, seg.line), seg.line));
      ExprParser& p = *parsers_.back();
      const int line = seg.line;
      std::string keyword = p.expect_name();
      for (const auto& e : ends)
        if (keyword == e) {
          which = keyword;
          stop = &p;
          ++i_;
          return body;
        }
      ++i_;
      body.push_back(statement(keyword, p, line));
    }
    if (!ends.empty()) fail("chat template: missing {{% {} %}} at the end", ends.front());
    which.clear();
    return body;
  }

  Body body_until(const std::vector<std::string>& ends, std::string& which) {
    ExprParser* unused = nullptr;
    return body_until(ends, which, unused);
  }

  std::unique_ptr<Node> statement(const std::string& keyword, ExprParser& p, int line) {
    if (keyword == "if") {
      auto n = std::make_unique<Node>(Node::Type::If, line);
      ExprPtr cond = p.expression();
      p.expect_end();
      for (;;) {
        std::string which;
        ExprParser* stop = nullptr;
        Body b = body_until({"elif", "else", "endif"}, which, stop);
        n->branches.emplace_back(std::move(cond), std::move(b));
        if (which == "endif") break;
        if (which == "else") {
          stop->expect_end();
          std::string w2;
          Body e = body_until({"endif"}, w2);
          n->branches.emplace_back(nullptr, std::move(e));
          break;
        }
        cond = stop->expression();
        stop->expect_end();
      }
      return n;
    }
    if (keyword == "for") {
      auto n = std::make_unique<Node>(Node::Type::For, line);
      do n->targets.push_back(p.expect_name());
      while (p.accept_op(","));
      if (!p.accept_name("in")) p.error("expected 'in'");
      n->expr = p.or_expr();  // not ternary: a trailing "if" filters the loop
      if (p.accept_name("if")) n->condition = p.or_expr();
      p.accept_name("recursive");
      p.expect_end();
      std::string which;
      ExprParser* stop = nullptr;
      n->body = body_until({"else", "endfor"}, which, stop);
      if (which == "else") n->else_body = body_until({"endfor"}, which);
      return n;
    }
    if (keyword == "set") {
      std::string first = p.expect_name();
      auto n = std::make_unique<Node>(Node::Type::Set, line);
      n->targets.push_back(first);
      if (p.accept_op(".")) n->attribute = p.expect_name();
      while (p.accept_op(",")) n->targets.push_back(p.expect_name());
      if (p.accept_op("=")) {
        n->expr = p.expression();
        if (p.accept_op(",")) {  // set a, b = 1, 2
          auto tuple = p.make(Expr::Type::List);
          tuple->items.push_back(std::move(n->expr));
          do tuple->items.push_back(p.expression());
          while (p.accept_op(","));
          n->expr = std::move(tuple);
        }
        p.expect_end();
        return n;
      }
      p.expect_end();
      n->type = Node::Type::SetBlock;
      std::string which;
      n->body = body_until({"endset"}, which);
      return n;
    }
    if (keyword == "macro") {
      auto n = std::make_unique<Node>(Node::Type::Macro, line);
      n->name = p.expect_name();
      p.expect_op("(");
      while (!p.is_op(")")) {
        std::string param = p.expect_name();
        ExprPtr def;
        if (p.accept_op("=")) def = p.expression();
        n->params.emplace_back(param, std::move(def));
        if (!p.accept_op(",")) break;
      }
      p.expect_op(")");
      p.expect_end();
      std::string which;
      n->body = body_until({"endmacro"}, which);
      return n;
    }
    if (keyword == "call") {
      auto n = std::make_unique<Node>(Node::Type::CallBlock, line);
      n->expr = p.expression();
      p.expect_end();
      std::string which;
      n->body = body_until({"endcall"}, which);
      return n;
    }
    if (keyword == "filter") {
      auto n = std::make_unique<Node>(Node::Type::FilterBlock, line);
      n->name = p.expect_name();
      p.expect_end();
      std::string which;
      n->body = body_until({"endfilter"}, which);
      return n;
    }
    if (keyword == "generation") {  // transformers' marker for assistant masks: renders its body
      p.expect_end();
      std::string which;
      auto n = std::make_unique<Node>(Node::Type::If, line);
      auto always = p.make(Expr::Type::Literal);
      always->literal = Value(true);
      n->branches.emplace_back(std::move(always), body_until({"endgeneration"}, which));
      return n;
    }
    if (keyword == "break" || keyword == "continue") {
      p.expect_end();
      return std::make_unique<Node>(keyword == "break" ? Node::Type::Break : Node::Type::Continue, line);
    }
    fail("chat template line {}: unknown statement '{}'", line, keyword);
  }

 private:
  std::vector<Segment> s_;
  std::size_t i_ = 0;
  int depth_ = 0;
  std::vector<std::unique_ptr<ExprParser>> parsers_;
};

}  // namespace

std::unique_ptr<Program> parse(const std::string& source) {
  Parser parser(split_template(source));
  auto program = std::make_unique<Program>();
  std::string which;
  program->body = parser.body_until({}, which);
  return program;
}

}  // namespace aero::chat::jinja
