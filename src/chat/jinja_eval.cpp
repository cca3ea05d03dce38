// Evaluation of a parsed template: scopes as Jinja2 has them (a for-loop body and a macro
// get their own; if does not; namespace() objects carry values out of loops), Python value
// semantics, and the filters, tests and methods chat templates use.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>

#include "aero/chat/template.h"
#include "aero/error.h"
#include "jinja_ast.h"
#include "jinja_builtins.h"

namespace aero::chat {

using namespace jinja;

namespace jinja {
namespace {

struct Scope {
  std::map<std::string, Value, std::less<>> vars;
  Scope* parent = nullptr;
  const Value* find(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent)
      if (auto it = s->vars.find(name); it != s->vars.end()) return &it->second;
    return nullptr;
  }
};

enum class Flow { Normal, Break, Continue };

class Evaluator {
 public:
  explicit Evaluator(Scope& root) : root_(root), scope_(&root) {}

  Flow exec(const Body& body, std::string& out) {
    for (const auto& node : body) {
      Flow f = exec(*node, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Value eval(const Expr& e);

 private:
  Flow exec(const Node& n, std::string& out);
  Flow exec_for(const Node& n, std::string& out);
  void assign(const Node& n, Value v);
  Value call(const Expr& e);
  Value binary(const Expr& e);
  Value macro(const Node& n);
  Arguments arguments(const CallArgs& args);
  [[noreturn]] void error(const Expr& e, const std::string& what) const {
    fail("chat template line {}: {}", e.line, what);
  }

  // Templates come inside model files: bound the work and output a hostile one can cause.
  void step() {
    if (++steps_ > 2'000'000) fail("chat template: rendering took more than 2 million steps");
  }
  static void check_size(const std::string& out) {
    if (out.size() > (64u << 20)) fail("chat template: rendered text exceeds 64 MiB");
  }

  Scope& root_;
  Scope* scope_;
  int depth_ = 0;
  std::uint64_t steps_ = 0;
};

// Runs `fn` with `scope` as the innermost scope, restoring the previous one after.
struct ScopeGuard {
  Scope*& current;
  Scope* saved;
  ScopeGuard(Scope*& c, Scope* next) : current(c), saved(c) { current = next; }
  ~ScopeGuard() { current = saved; }
};

Arguments Evaluator::arguments(const CallArgs& args) {
  Arguments a;
  for (const auto& p : args.positional) a.positional.push_back(eval(*p));
  for (const auto& [k, v] : args.named) a.named.emplace_back(k, eval(*v));
  return a;
}

Value Evaluator::eval(const Expr& e) {
  switch (e.type) {
    case Expr::Type::Literal: return e.literal;
    case Expr::Type::Name: {
      const Value* v = scope_->find(e.name);
      return v ? *v : Value();
    }
    case Expr::Type::List: {
      Array a;
      for (const auto& item : e.items) a.push_back(eval(*item));
      return Value(std::move(a));
    }
    case Expr::Type::Dict: {
      Value o = Value::object();
      for (std::size_t i = 0; i + 1 < e.items.size(); i += 2) o.obj().set(eval(*e.items[i]).to_string(), eval(*e.items[i + 1]));
      return o;
    }
    case Expr::Type::Attribute: return get_attribute(eval(*e.a), e.name);
    case Expr::Type::Index: return get_item(eval(*e.a), eval(*e.b));
    case Expr::Type::Slice: {
      Value start = e.b ? eval(*e.b) : Value(), stop = e.items[0] ? eval(*e.items[0]) : Value(),
            step = e.c ? eval(*e.c) : Value();
      return slice(eval(*e.a), start, stop, step);
    }
    case Expr::Type::Call: return call(e);
    case Expr::Type::Filter: {
      Arguments args = arguments(e.args);
      return apply_filter(e.name, eval(*e.a), args);
    }
    case Expr::Type::Test: {
      Arguments args = arguments(e.args);
      bool r = apply_test(e.name, eval(*e.a), args);
      return Value(e.negated ? !r : r);
    }
    case Expr::Type::Unary: {
      Value v = eval(*e.a);
      if (e.name == "not") return Value(!v.truthy());
      if (e.name == "-") {
        if (v.kind() == Value::Kind::Float) return Value(-v.as_float());
        return Value(-v.as_int());
      }
      return v;
    }
    case Expr::Type::Binary: return binary(e);
    case Expr::Type::Ternary: return eval(*e.a).truthy() ? eval(*e.b) : (e.c ? eval(*e.c) : Value());
  }
  return {};
}

Value Evaluator::binary(const Expr& e) {
  const std::string& op = e.name;
  if (op == "and") {
    Value l = eval(*e.a);
    return l.truthy() ? eval(*e.b) : l;
  }
  if (op == "or") {
    Value l = eval(*e.a);
    return l.truthy() ? l : eval(*e.b);
  }
  Value l = eval(*e.a), r = eval(*e.b);
  try {
    return binary_op(op, l, r);
  } catch (const Error& err) {
    error(e, err.what());
  }
}

Value Evaluator::call(const Expr& e) {
  Arguments args = arguments(e.args);
  // Methods of strings, lists and dicts: "s.strip()", "d.items()".
  if (e.a->type == Expr::Type::Attribute) {
    Value object = eval(*e.a->a);
    if (object.is_string() || object.is_array() || (object.is_object() && !object.obj().find(e.a->name))) {
      if (auto r = call_method(object, e.a->name, args)) return *r;
    }
    Value f = get_attribute(object, e.a->name);
    if (!f.is_callable()) error(e, fmt::format("{} has no method '{}'", object.type_name(), e.a->name));
    return f.function()(args);
  }
  Value f = eval(*e.a);
  if (!f.is_callable()) {
    if (e.a->type == Expr::Type::Name) error(e, fmt::format("'{}' is not a function", e.a->name));
    error(e, "call of something that is not a function");
  }
  return f.function()(args);
}

Value Evaluator::macro(const Node& n) {
  return Value::callable([this, &n](Arguments& args) -> Value {
    if (++depth_ > 64) fail("chat template: macro recursion deeper than 64");
    Scope local;
    local.parent = &root_;
    for (std::size_t i = 0; i < n.params.size(); ++i) {
      const auto& [name, def] = n.params[i];
      Value v = args.get(i, name);
      if (v.is_undefined() && def) {
        ScopeGuard g(scope_, &local);
        v = eval(*def);
      }
      local.vars[name] = v;
    }
    if (const Value* caller = scope_->find("caller")) local.vars["caller"] = *caller;
    std::string out;
    {
      ScopeGuard g(scope_, &local);
      exec(n.body, out);
    }
    --depth_;
    return Value(out);
  });
}

void Evaluator::assign(const Node& n, Value v) {
  if (!n.attribute.empty()) {
    const Value* target = scope_->find(n.targets[0]);
    if (!target || !target->is_object()) fail("chat template line {}: '{}' is not a namespace", n.line, n.targets[0]);
    target->obj().set(n.attribute, std::move(v));
    return;
  }
  if (n.targets.size() == 1) {
    scope_->vars[n.targets[0]] = std::move(v);
    return;
  }
  if (!v.is_array() || v.array().size() != n.targets.size())
    fail("chat template line {}: cannot unpack into {} names", n.line, n.targets.size());
  for (std::size_t i = 0; i < n.targets.size(); ++i) scope_->vars[n.targets[i]] = v.array()[i];
}

Flow Evaluator::exec_for(const Node& n, std::string& out) {
  Array items = iterate(eval(*n.expr));
  Scope loop_scope;
  loop_scope.parent = scope_;
  ScopeGuard guard(scope_, &loop_scope);
  auto bind = [&](Scope& s, const Value& item) {
    if (n.targets.size() == 1) {
      s.vars[n.targets[0]] = item;
      return;
    }
    Array parts = iterate(item);
    if (parts.size() != n.targets.size()) fail("chat template line {}: cannot unpack into {} names", n.line, n.targets.size());
    for (std::size_t i = 0; i < parts.size(); ++i) s.vars[n.targets[i]] = parts[i];
  };
  if (n.condition) {  // "for x in xs if cond" filters before loop.* counts
    Array kept;
    for (const auto& item : items) {
      step();
      Scope s;
      s.parent = &loop_scope;
      bind(s, item);
      ScopeGuard g(scope_, &s);
      if (eval(*n.condition).truthy()) kept.push_back(item);
    }
    items.swap(kept);
  }
  if (items.empty()) {
    exec(n.else_body, out);
    return Flow::Normal;
  }
  const auto length = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < length; ++i) {
    step();
    Scope iteration;
    iteration.parent = &loop_scope;
    bind(iteration, items[i]);
    Value loop = Value::object();
    Object& o = loop.obj();
    o.set("index0", Value(i));
    o.set("index", Value(i + 1));
    o.set("revindex0", Value(length - i - 1));
    o.set("revindex", Value(length - i));
    o.set("first", Value(i == 0));
    o.set("last", Value(i == length - 1));
    o.set("length", Value(length));
    o.set("depth", Value(1));
    o.set("depth0", Value(0));
    o.set("previtem", i > 0 ? items[i - 1] : Value());
    o.set("nextitem", i + 1 < length ? items[i + 1] : Value());
    o.set("cycle", Value::callable([i](Arguments& a) -> Value {
      if (a.positional.empty()) return Value();
      return a.positional[static_cast<std::size_t>(i) % a.positional.size()];
    }));
    iteration.vars["loop"] = loop;
    ScopeGuard g(scope_, &iteration);
    if (exec(n.body, out) == Flow::Break) break;
  }
  return Flow::Normal;
}

Flow Evaluator::exec(const Node& n, std::string& out) {
  step();
  check_size(out);
  switch (n.type) {
    case Node::Type::Text: out += n.text; break;
    case Node::Type::Output: out += eval(*n.expr).to_string(); break;
    case Node::Type::If:
      for (const auto& [cond, body] : n.branches)
        if (!cond || eval(*cond).truthy()) return exec(body, out);
      break;
    case Node::Type::For: return exec_for(n, out);
    case Node::Type::Set: assign(n, eval(*n.expr)); break;
    case Node::Type::SetBlock: {
      std::string captured;
      exec(n.body, captured);
      assign(n, Value(captured));
      break;
    }
    case Node::Type::Macro: scope_->vars[n.name] = macro(n); break;
    case Node::Type::Break: return Flow::Break;
    case Node::Type::Continue: return Flow::Continue;
    case Node::Type::CallBlock: {
      Scope s;
      s.parent = scope_;
      const Node* block = &n;
      Scope* outer = scope_;
      s.vars["caller"] = Value::callable([this, block, outer](Arguments&) -> Value {
        std::string body;
        ScopeGuard g(scope_, outer);
        exec(block->body, body);
        return Value(body);
      });
      ScopeGuard g(scope_, &s);
      out += eval(*n.expr).to_string();
      break;
    }
    case Node::Type::FilterBlock: {
      std::string captured;
      exec(n.body, captured);
      Arguments none;
      out += apply_filter(n.name, Value(captured), none).to_string();
      break;
    }
  }
  return Flow::Normal;
}

std::string strftime_now(const std::string& format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[256];
  std::size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
  return std::string(buf, n);
}

void add_globals(Scope& root) {
  root.vars["range"] = Value::callable([](Arguments& a) -> Value {
    std::int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) stop = a.positional[0].as_int();
    else if (a.positional.size() >= 2) {
      start = a.positional[0].as_int();
      stop = a.positional[1].as_int();
      if (a.positional.size() > 2) step = a.positional[2].as_int();
    } else {
      fail("chat template: range() needs arguments");
    }
    if (step == 0) fail("chat template: range() step is zero");
    Array r;
    for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      r.push_back(Value(i));
      if (r.size() > 1000000) fail("chat template: range() too long");
    }
    return Value(std::move(r));
  });
  auto make_dict = [](Arguments& a) -> Value {
    Value o = Value::object();
    for (auto& [k, v] : a.named) o.obj().set(k, v);
    return o;
  };
  root.vars["namespace"] = Value::callable(make_dict);
  root.vars["dict"] = Value::callable(make_dict);
  root.vars["raise_exception"] = Value::callable([](Arguments& a) -> Value {
    fail("chat template raised an error: {}", a.get(0, "message").to_string());
  });
  root.vars["strftime_now"] = Value::callable(
      [](Arguments& a) -> Value { return Value(strftime_now(a.get(0, "format", Value("%Y-%m-%d")).to_string())); });
}

}  // namespace
}  // namespace jinja

Template::Template(const std::string& source) : program_(jinja::parse(source)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Json& context) const {
  Scope root;
  add_globals(root);
  if (context.is_object())
    for (const auto& [k, v] : context.items()) root.vars[k] = Value::from_json(v);
  Evaluator ev(root);
  std::string out;
  ev.exec(program_->body, out);
  return out;
}

std::string apply_chat_template(const Template& tmpl, const Json& messages, const ChatOptions& options) {
  Json context = Json::object();
  context["messages"] = messages;
  // transformers passes these explicitly, so templates see them defined (as none).
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = options.add_generation_prompt;
  context["bos_token"] = options.bos_token;
  context["eos_token"] = options.eos_token;
  if (options.extra.is_object())
    for (const auto& [k, v] : options.extra.items()) context[k] = v;
  return tmpl.render(context);
}

std::string apply_chat_template(const Template& tmpl, const std::vector<Message>& messages, const ChatOptions& options) {
  Json list = Json::array();
  for (const auto& m : messages) list.push_back(Json{{"role", m.role}, {"content", m.content}});
  return apply_chat_template(tmpl, list, options);
}

}  // namespace aero::chat
