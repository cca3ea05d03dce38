#include "jinja_builtins.h"

#include <algorithm>
#include <cmath>

#include "aero/error.h"

namespace aero::chat::jinja {

namespace {

// Byte offsets of each code point of a UTF-8 string, plus the end: Python indexes strings by
// code point.
std::vector<std::size_t> code_point_offsets(const std::string& s) {
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) offsets.push_back(i);
  offsets.push_back(s.size());
  return offsets;
}

std::int64_t length_of(const Value& v) {
  if (v.is_string()) return static_cast<std::int64_t>(code_point_offsets(v.str()).size() - 1);
  if (v.is_array()) return static_cast<std::int64_t>(v.array().size());
  if (v.is_object()) return static_cast<std::int64_t>(v.obj().entries.size());
  if (v.is_undefined()) return 0;
  fail("chat template: {} has no length", v.type_name());
}

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  auto strip_char = [&](char c) {
    return chars.is_string() ? chars.str().find(c) != std::string::npos : is_py_space(c);
  };
  std::size_t b = 0, e = s.size();
  if (left)
    while (b < e && strip_char(s[b])) ++b;
  if (right)
    while (e > b && strip_char(s[e - 1])) --e;
  return s.substr(b, e - b);
}

Array split(const std::string& s, const Value& sep, std::int64_t max_split) {
  Array out;
  if (!sep.is_string() || sep.str().empty()) {  // whitespace runs, no empty parts
    std::size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_py_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (max_split >= 0 && static_cast<std::int64_t>(out.size()) == max_split) {
        out.push_back(Value(s.substr(i)));
        break;
      }
      std::size_t j = i;
      while (j < s.size() && !is_py_space(s[j])) ++j;
      out.push_back(Value(s.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  const std::string& d = sep.str();
  std::size_t from = 0;
  for (std::size_t at; (max_split < 0 || static_cast<std::int64_t>(out.size()) < max_split) &&
                       (at = s.find(d, from)) != std::string::npos;
       from = at + d.size())
    out.push_back(Value(s.substr(from, at - from)));
  out.push_back(Value(s.substr(from)));
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to, std::int64_t count = -1) {
  if (from.empty()) return s;
  std::size_t pos = 0;
  for (std::int64_t n = 0; (count < 0 || n < count) && (pos = s.find(from, pos)) != std::string::npos; ++n) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string title(std::string s) {
  bool start = true;
  for (auto& c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = true;
    }
  }
  return s;
}
std::string capitalize(std::string s) {
  s = lower(std::move(s));
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.as_float(), y = b.as_float();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.str().compare(b.str()) < 0 ? -1 : a.str() == b.str() ? 0 : 1;
  if (a.kind() == Value::Kind::Bool || b.kind() == Value::Kind::Bool) {
    double x = a.as_float(), y = b.as_float();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  fail("chat template: cannot compare {} with {}", a.type_name(), b.type_name());
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) return item.is_string() && container.str().find(item.str()) != std::string::npos;
  if (container.is_array()) return std::find(container.array().begin(), container.array().end(), item) != container.array().end();
  if (container.is_object()) return item.is_string() && container.obj().find(item.str()) != nullptr;
  if (container.is_undefined() || container.is_none()) return false;
  fail("chat template: 'in' needs a string, list or dict, not {}", container.type_name());
}

// Python's "%" on strings, for the conversions templates use (%s %d %r %%).
std::string percent_format(const std::string& f, const Value& args) {
  Array values = args.is_array() ? args.array() : Array{args};
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%' || i + 1 >= f.size()) {
      out += f[i];
      continue;
    }
    char c = f[++i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) fail("chat template: not enough arguments for format string");
    const Value& v = values[next++];
    if (c == 'd' || c == 'i') out += std::to_string(v.as_int());
    else if (c == 'r') out += v.repr();
    else out += v.to_string();
  }
  return out;
}

Value attribute_of(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return item;
  Value v = item;
  for (const auto& part : split(attribute.str(), Value("."), -1)) v = get_attribute(v, part.str());
  return v;
}

Arguments rest(const Arguments& args, std::size_t from) {
  Arguments a;
  for (std::size_t i = from; i < args.positional.size(); ++i) a.positional.push_back(args.positional[i]);
  return a;
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_object()) {
    const Value* v = object.obj().find(name);
    return v ? *v : Value();
  }
  if (object.is_array() && !name.empty() && name.size() < 10 && std::all_of(name.begin(), name.end(), ::isdigit))
    return get_item(object, Value(static_cast<std::int64_t>(std::stoll(name))));
  return Value();  // undefined, as Jinja's default Undefined
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_object()) {
    const Value* v = object.obj().find(key.to_string());
    return v ? *v : Value();
  }
  if (object.is_array() || object.is_string()) {
    if (!key.is_number() && key.kind() != Value::Kind::Bool) {
      if (key.is_string()) return Value();
      fail("chat template: index of a {} must be a number", object.type_name());
    }
    std::int64_t n = length_of(object), i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();  // out of range: undefined
    if (object.is_array()) return object.array()[static_cast<std::size_t>(i)];
    auto offsets = code_point_offsets(object.str());
    return Value(object.str().substr(offsets[i], offsets[i + 1] - offsets[i]));
  }
  return Value();
}

Value slice(const Value& object, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (!object.is_array() && !object.is_string()) fail("chat template: cannot slice a {}", object.type_name());
  const std::int64_t n = length_of(object);
  const std::int64_t step = step_v.is_number() ? step_v.as_int() : 1;
  if (step == 0) fail("chat template: slice step cannot be zero");
  auto clamp = [&](const Value& v, std::int64_t fallback) {
    if (!v.is_number()) return fallback;
    std::int64_t i = v.as_int();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<std::int64_t>(i, 0, n);
    return std::clamp<std::int64_t>(i, -1, n - 1);
  };
  std::int64_t start = clamp(start_v, step > 0 ? 0 : n - 1), stop = clamp(stop_v, step > 0 ? n : -1);
  std::vector<std::int64_t> picks;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(i);
  if (object.is_array()) {
    Array out;
    for (auto i : picks) out.push_back(object.array()[static_cast<std::size_t>(i)]);
    return Value(std::move(out));
  }
  auto offsets = code_point_offsets(object.str());
  std::string out;
  for (auto i : picks) out += object.str().substr(offsets[i], offsets[i + 1] - offsets[i]);
  return Value(out);
}

Array iterate(const Value& v) {
  if (v.is_array()) return v.array();
  if (v.is_object()) {
    Array keys;
    for (const auto& [k, _] : v.obj().entries) keys.push_back(Value(k));
    return keys;
  }
  if (v.is_string()) {
    Array chars;
    auto offsets = code_point_offsets(v.str());
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
      chars.push_back(Value(v.str().substr(offsets[i], offsets[i + 1] - offsets[i])));
    return chars;
  }
  if (v.is_undefined() || v.is_none()) return {};
  fail("chat template: cannot iterate over a {}", v.type_name());
}

Value binary_op(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return Value(l == r);
  if (op == "!=") return Value(!(l == r));
  if (op == "<") return Value(compare(l, r) < 0);
  if (op == ">") return Value(compare(l, r) > 0);
  if (op == "<=") return Value(compare(l, r) <= 0);
  if (op == ">=") return Value(compare(l, r) >= 0);
  if (op == "in") return Value(contains(r, l));
  if (op == "not in") return Value(!contains(r, l));
  if (op == "~") return Value(l.to_string() + r.to_string());
  const bool ints = (l.kind() == Value::Kind::Int || l.kind() == Value::Kind::Bool) &&
                    (r.kind() == Value::Kind::Int || r.kind() == Value::Kind::Bool);
  if (op == "+") {
    if (l.is_string() && r.is_string()) return Value(l.str() + r.str());
    if (l.is_array() && r.is_array()) {
      Array a = l.array();
      a.insert(a.end(), r.array().begin(), r.array().end());
      return Value(std::move(a));
    }
    if (l.is_number() && r.is_number()) return ints ? Value(l.as_int() + r.as_int()) : Value(l.as_float() + r.as_float());
    fail("cannot add {} and {}", l.type_name(), r.type_name());
  }
  if (op == "*" && l.is_string() && r.is_number()) {
    std::string s;
    for (std::int64_t i = 0; i < r.as_int() && s.size() < (1u << 24); ++i) s += l.str();
    return Value(s);
  }
  if (op == "%" && l.is_string()) return Value(percent_format(l.str(), r));
  if (!l.is_number() || !r.is_number()) fail("'{}' needs numbers, not {} and {}", op, l.type_name(), r.type_name());
  if (op == "-") return ints ? Value(l.as_int() - r.as_int()) : Value(l.as_float() - r.as_float());
  if (op == "*") return ints ? Value(l.as_int() * r.as_int()) : Value(l.as_float() * r.as_float());
  if (op == "/") {
    if (r.as_float() == 0) fail("division by zero");
    return Value(l.as_float() / r.as_float());
  }
  if (op == "//" || op == "%") {
    if (r.as_float() == 0) fail("division by zero");
    if (ints) {
      std::int64_t a = l.as_int(), b = r.as_int(), q = a / b;
      if ((a % b != 0) && ((a < 0) != (b < 0))) --q;  // Python floors
      return op == "//" ? Value(q) : Value(a - q * b);
    }
    double q = std::floor(l.as_float() / r.as_float());
    return op == "//" ? Value(q) : Value(l.as_float() - q * r.as_float());
  }
  if (op == "**") return ints && r.as_int() >= 0 ? Value(static_cast<std::int64_t>(std::pow(l.as_float(), r.as_float())))
                                                 : Value(std::pow(l.as_float(), r.as_float()));
  fail("unknown operator '{}'", op);
}

std::optional<Value> call_method(const Value& object, const std::string& name, Arguments& args) {
  if (object.is_string()) {
    const std::string& s = object.str();
    if (name == "strip") return Value(strip(s, args.get(0, "chars"), true, true));
    if (name == "lstrip") return Value(strip(s, args.get(0, "chars"), true, false));
    if (name == "rstrip") return Value(strip(s, args.get(0, "chars"), false, true));
    if (name == "split") {
      Value max = args.get(1, "maxsplit");
      return Value(split(s, args.get(0, "sep"), max.is_number() ? max.as_int() : -1));
    }
    if (name == "startswith" || name == "endswith") {
      Value p = args.get(0, "prefix");
      Array options = p.is_array() ? p.array() : Array{p};
      for (const auto& o : options)
        if (o.is_string() && (name == "startswith" ? s.starts_with(o.str()) : s.ends_with(o.str()))) return Value(true);
      return Value(false);
    }
    if (name == "replace") {
      Value count = args.get(2, "count");
      return Value(replace_all(s, args.get(0, "old").to_string(), args.get(1, "new").to_string(),
                               count.is_number() ? count.as_int() : -1));
    }
    if (name == "upper") return Value(upper(s));
    if (name == "lower") return Value(lower(s));
    if (name == "title") return Value(title(s));
    if (name == "capitalize") return Value(capitalize(s));
    if (name == "find") {
      auto at = s.find(args.get(0, "sub").to_string());
      return Value(at == std::string::npos ? std::int64_t{-1} : static_cast<std::int64_t>(at));
    }
    if (name == "count") {
      std::string sub = args.get(0, "sub").to_string();
      std::int64_t n = 0;
      if (!sub.empty())
        for (std::size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return Value(n);
    }
    if (name == "join") {
      std::string out;
      Array items = iterate(args.get(0, "iterable"));
      for (std::size_t i = 0; i < items.size(); ++i) out += (i ? s : "") + items[i].to_string();
      return Value(out);
    }
    if (name == "splitlines") return Value(split(replace_all(s, "\r\n", "\n"), Value("\n"), -1));
    if (name == "isdigit") return Value(!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit));
    return std::nullopt;
  }
  if (object.is_array()) {
    Array& a = object.array();
    if (name == "append") {
      a.push_back(args.get(0, "item"));
      return Value::none();
    }
    if (name == "extend") {
      for (const auto& v : iterate(args.get(0, "iterable"))) a.push_back(v);
      return Value::none();
    }
    if (name == "pop") {
      if (a.empty()) fail("chat template: pop from an empty list");
      Value idx = args.get(0, "index");
      std::int64_t i = idx.is_number() ? idx.as_int() : -1;
      if (i < 0) i += static_cast<std::int64_t>(a.size());
      if (i < 0 || i >= static_cast<std::int64_t>(a.size())) fail("chat template: pop index out of range");
      Value v = a[static_cast<std::size_t>(i)];
      a.erase(a.begin() + i);
      return v;
    }
    if (name == "index") {
      auto it = std::find(a.begin(), a.end(), args.get(0, "value"));
      if (it == a.end()) fail("chat template: value not in list");
      return Value(static_cast<std::int64_t>(it - a.begin()));
    }
    return std::nullopt;
  }
  if (object.is_object()) {
    Object& o = object.obj();
    if (name == "items") {
      Array out;
      for (const auto& [k, v] : o.entries) out.push_back(Value(Array{Value(k), v}));
      return Value(std::move(out));
    }
    if (name == "keys") return Value(iterate(object));
    if (name == "values") {
      Array out;
      for (const auto& [k, v] : o.entries) out.push_back(v);
      return Value(std::move(out));
    }
    if (name == "get") {
      const Value* v = o.find(args.get(0, "key").to_string());
      return v ? *v : args.get(1, "default", Value::none());
    }
    return std::nullopt;
  }
  return std::nullopt;
}

bool apply_test(const std::string& name, const Value& v, Arguments& args) {
  using K = Value::Kind;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind() == K::Int;
  if (name == "float") return v.kind() == K::Float;
  if (name == "boolean") return v.kind() == K::Bool;
  if (name == "true") return v.kind() == K::Bool && v.truthy();
  if (name == "false") return v.kind() == K::Bool && !v.truthy();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") return v.is_array() || v.is_object() || v.is_string();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_object();
  if (name == "callable") return v.is_callable();
  if (name == "odd") return v.as_int() % 2 != 0;
  if (name == "even") return v.as_int() % 2 == 0;
  if (name == "divisibleby") return args.get(0, "num").as_int() != 0 && v.as_int() % args.get(0, "num").as_int() == 0;
  if (name == "lower") return v.is_string() && lower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && upper(v.str()) == v.str();
  const Value other = args.get(0, "other");
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return v == other;
  if (name == "ne" || name == "!=") return !(v == other);
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, other) < 0;
  if (name == "le" || name == "<=") return compare(v, other) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, other) > 0;
  if (name == "ge" || name == ">=") return compare(v, other) >= 0;
  if (name == "in") return contains(other, v);
  fail("chat template: unknown test '{}'", name);
}

Value apply_filter(const std::string& name, const Value& input, Arguments& args) {
  if (name == "trim") return Value(strip(input.to_string(), args.get(0, "chars"), true, true));
  if (name == "length" || name == "count") return Value(length_of(input));
  if (name == "string") return Value(input.to_string());
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    if (name == "safe") return input;
    std::string s = input.to_string();
    for (auto [from, to] : {std::pair{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&#34;"}, {"'", "&#39;"}})
      s = replace_all(s, from, to);
    return Value(s);
  }
  if (name == "lower") return Value(lower(input.to_string()));
  if (name == "upper") return Value(upper(input.to_string()));
  if (name == "title") return Value(title(input.to_string()));
  if (name == "capitalize") return Value(capitalize(input.to_string()));
  if (name == "replace") {
    Value count = args.get(2, "count");
    return Value(replace_all(input.to_string(), args.get(0, "old").to_string(), args.get(1, "new").to_string(),
                             count.is_number() ? count.as_int() : -1));
  }
  if (name == "default" || name == "d") {
    const bool boolean = args.get(1, "boolean", Value(false)).truthy();
    if (input.is_undefined() || (boolean && !input.truthy())) return args.get(0, "default_value", Value(""));
    return input;
  }
  if (name == "tojson") {
    Value indent = args.get(0, "indent");
    return Value(input.to_json(indent.is_number() ? static_cast<int>(indent.as_int()) : -1));
  }
  if (name == "int") {
    if (input.is_string()) {
      try {
        return Value(static_cast<std::int64_t>(std::stoll(input.str())));
      } catch (...) {
        return args.get(0, "default", Value(0));
      }
    }
    return input.is_number() || input.kind() == Value::Kind::Bool ? Value(input.as_int()) : args.get(0, "default", Value(0));
  }
  if (name == "float") {
    if (input.is_string()) {
      try {
        return Value(std::stod(input.str()));
      } catch (...) {
        return args.get(0, "default", Value(0.0));
      }
    }
    return input.is_number() ? Value(input.as_float()) : args.get(0, "default", Value(0.0));
  }
  if (name == "abs") return input.kind() == Value::Kind::Float ? Value(std::fabs(input.as_float())) : Value(static_cast<std::int64_t>(std::llabs(input.as_int())));
  if (name == "round") {
    double p = std::pow(10.0, static_cast<double>(args.get(0, "precision", Value(0)).as_int()));
    return Value(std::round(input.as_float() * p) / p);
  }
  if (name == "items") return *call_method(input.is_object() ? input : Value::object(), "items", args);
  if (name == "list") return Value(iterate(input));
  if (name == "first") {
    Array a = iterate(input);
    return a.empty() ? Value() : a.front();
  }
  if (name == "last") {
    Array a = iterate(input);
    return a.empty() ? Value() : a.back();
  }
  if (name == "reverse") {
    if (input.is_string()) return slice(input, Value(), Value(), Value(-1));
    Array a = iterate(input);
    std::reverse(a.begin(), a.end());
    return Value(std::move(a));
  }
  if (name == "join") {
    Array items = iterate(input);
    Value attribute = args.get(1, "attribute");
    std::string sep = args.get(0, "d", Value("")).to_string(), out;
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + attribute_of(items[i], attribute).to_string();
    return Value(out);
  }
  if (name == "unique") {
    Array out;
    for (const auto& v : iterate(input))
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    return Value(std::move(out));
  }
  if (name == "sort") {
    Array a = iterate(input);
    Value attribute = args.get(2, "attribute");
    const bool reverse = args.get(0, "reverse", Value(false)).truthy();
    std::stable_sort(a.begin(), a.end(), [&](const Value& x, const Value& y) {
      return compare(attribute_of(x, attribute), attribute_of(y, attribute)) < 0;
    });
    if (reverse) std::reverse(a.begin(), a.end());
    return Value(std::move(a));
  }
  if (name == "dictsort") {
    Value items = *call_method(input.is_object() ? input : Value::object(), "items", args);
    Array a = items.array();
    std::stable_sort(a.begin(), a.end(), [](const Value& x, const Value& y) { return compare(x.array()[0], y.array()[0]) < 0; });
    return Value(std::move(a));
  }
  if (name == "map") {
    Array out;
    Value attribute = args.get(99, "attribute");
    if (attribute.is_string()) {
      Value fallback = args.get(99, "default");
      for (const auto& v : iterate(input)) {
        Value a = attribute_of(v, attribute);
        out.push_back(a.is_undefined() && !fallback.is_undefined() ? fallback : a);
      }
    } else {
      std::string filter = args.get(0, "filter").to_string();
      Arguments inner = rest(args, 1);
      for (const auto& v : iterate(input)) out.push_back(apply_filter(filter, v, inner));
    }
    return Value(std::move(out));
  }
  if (name == "select" || name == "reject") {
    Array out;
    Value test = args.get(0, "test");
    Arguments inner = rest(args, 1);
    for (const auto& v : iterate(input)) {
      bool ok = test.is_string() ? apply_test(test.str(), v, inner) : v.truthy();
      if (ok == (name == "select")) out.push_back(v);
    }
    return Value(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr") {
    Array out;
    Value attribute = args.get(0, "attribute");
    Value test = args.get(1, "test");
    Arguments inner = rest(args, 2);
    for (const auto& v : iterate(input)) {
      Value a = attribute_of(v, attribute);
      bool ok = test.is_string() ? apply_test(test.str(), a, inner) : a.truthy();
      if (ok == (name == "selectattr")) out.push_back(v);
    }
    return Value(std::move(out));
  }
  if (name == "sum") {
    Value total(std::int64_t{0});
    for (const auto& v : iterate(input)) total = binary_op("+", total, attribute_of(v, args.get(99, "attribute")));
    return total;
  }
  if (name == "min" || name == "max") {
    Array a = iterate(input);
    if (a.empty()) return Value();
    auto it = std::min_element(a.begin(), a.end(), [&](const Value& x, const Value& y) {
      return name == "min" ? compare(x, y) < 0 : compare(x, y) > 0;
    });
    return *it;
  }
  if (name == "indent") {
    const std::int64_t width = args.get(0, "width", Value(4)).as_int();
    const bool first = args.get(1, "first", Value(false)).truthy();
    const bool blank = args.get(2, "blank", Value(false)).truthy();
    const std::string pad(static_cast<std::size_t>(std::max<std::int64_t>(width, 0)), ' ');
    Array lines = split(input.to_string(), Value("\n"), -1);
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string& l = lines[i].str();
      if (i) out += '\n';
      if ((i > 0 || first) && (blank || !l.empty())) out += pad;
      out += l;
    }
    return Value(out);
  }
  if (name == "wordcount") return Value(static_cast<std::int64_t>(split(input.to_string(), Value(), -1).size()));
  if (name == "batch") {
    std::int64_t size = std::max<std::int64_t>(1, args.get(0, "linecount").as_int());
    Array out, current;
    for (const auto& v : iterate(input)) {
      current.push_back(v);
      if (static_cast<std::int64_t>(current.size()) == size) out.push_back(Value(std::exchange(current, {})));
    }
    if (!current.empty()) out.push_back(Value(std::move(current)));
    return Value(std::move(out));
  }
  fail("chat template: unknown filter '{}'", name);
}

}  // namespace aero::chat::jinja
