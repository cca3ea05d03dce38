#include "jinja_value.h"

#include <cmath>

#include "aero/error.h"

namespace aero::chat::jinja {

Value Value::object() {
  Value v(Kind::Object);
  v.object_ = std::make_shared<Object>();
  return v;
}

Value Value::callable(Function f) {
  Value v(Kind::Callable);
  v.function_ = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::from_json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return none();
    case Json::value_t::boolean: return Value(j.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return Value(j.get<std::int64_t>());
    case Json::value_t::number_float: return Value(j.get<double>());
    case Json::value_t::string: return Value(j.get<std::string>());
    case Json::value_t::array: {
      Array a;
      for (const auto& e : j) a.push_back(from_json(e));
      return Value(std::move(a));
    }
    case Json::value_t::object: {
      Value o = object();
      for (const auto& [k, v] : j.items()) o.obj().set(k, from_json(v));
      return o;
    }
    default: return {};
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool:
    case Kind::Int: return int_ != 0;
    case Kind::Float: return float_ != 0;
    case Kind::String: return !string_->empty();
    case Kind::Array: return !array_->empty();
    case Kind::Object: return !object_->entries.empty();
    case Kind::Callable: return true;
  }
  return false;
}

std::int64_t Value::as_int() const {
  if (kind_ == Kind::Float) return static_cast<std::int64_t>(float_);
  if (kind_ == Kind::Int || kind_ == Kind::Bool) return int_;
  fail("chat template: expected a number, got {}", type_name());
}

double Value::as_float() const {
  if (kind_ == Kind::Float) return float_;
  if (kind_ == Kind::Int || kind_ == Kind::Bool) return static_cast<double>(int_);
  fail("chat template: expected a number, got {}", type_name());
}

const std::string& Value::str() const {
  if (kind_ != Kind::String) fail("chat template: expected a string, got {}", type_name());
  return *string_;
}

Array& Value::array() const {
  if (kind_ != Kind::Array) fail("chat template: expected a list, got {}", type_name());
  return *array_;
}

Object& Value::obj() const {
  if (kind_ != Kind::Object) fail("chat template: expected a dict, got {}", type_name());
  return *object_;
}

const Function& Value::function() const {
  if (kind_ != Kind::Callable) fail("chat template: {} is not callable", type_name());
  return *function_;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "none";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::Array: return "list";
    case Kind::Object: return "dict";
    case Kind::Callable: return "callable";
  }
  return "?";
}

namespace {

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Python's repr: the shortest round-tripping digits, always with a '.' or exponent.
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string python_quote(const std::string& s) {
  const bool use_double = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = use_double ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + q;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  out += '"';
}

}  // namespace

std::string Value::to_string() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::String: return *string_;
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return int_ ? "True" : "False";
    case Kind::Int: return std::to_string(int_);
    case Kind::Float: return float_repr(float_);
    case Kind::String: return python_quote(*string_);
    case Kind::Array: {
      std::string s = "[";
      for (std::size_t i = 0; i < array_->size(); ++i) s += (i ? ", " : "") + (*array_)[i].repr();
      return s + "]";
    }
    case Kind::Object: {
      std::string s = "{";
      bool first = true;
      for (const auto& [k, v] : object_->entries) {
        s += (first ? "" : ", ") + python_quote(k) + ": " + v.repr();
        first = false;
      }
      return s + "}";
    }
    case Kind::Callable: return "<function>";
  }
  return "";
}

std::string Value::to_json(int indent, int depth) const {
  std::string out;
  auto newline = [&](int d) {
    if (indent >= 0) out += "\n" + std::string(static_cast<std::size_t>(indent * d), ' ');
  };
  const char* comma = indent >= 0 ? "," : ", ";
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return "null";
    case Kind::Bool: return int_ ? "true" : "false";
    case Kind::Int: return std::to_string(int_);
    case Kind::Float: return std::isfinite(float_) ? float_repr(float_) : (std::isnan(float_) ? "NaN" : float_ > 0 ? "Infinity" : "-Infinity");
    case Kind::String: json_string(out, *string_); return out;
    case Kind::Array:
      if (array_->empty()) return "[]";
      out += '[';
      for (std::size_t i = 0; i < array_->size(); ++i) {
        if (i) out += comma;
        newline(depth + 1);
        out += (*array_)[i].to_json(indent, depth + 1);
      }
      newline(depth);
      return out + ']';
    case Kind::Object: {
      if (object_->entries.empty()) return "{}";
      out += '{';
      bool first = true;
      for (const auto& [k, v] : object_->entries) {
        if (!first) out += comma;
        first = false;
        newline(depth + 1);
        json_string(out, k);
        out += ": " + v.to_json(indent, depth + 1);
      }
      newline(depth);
      return out + '}';
    }
    case Kind::Callable: fail("chat template: a function cannot be written as JSON");
  }
  return out;
}

Json Value::to_json_value() const { return Json::parse(to_json()); }

bool Value::operator==(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::Int && o.kind_ == Kind::Int) return int_ == o.int_;
    return as_float() == o.as_float();
  }
  if ((kind_ == Kind::Bool && o.is_number()) || (is_number() && o.kind_ == Kind::Bool)) return as_float() == o.as_float();
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::Bool: return int_ == o.int_;
    case Kind::String: return *string_ == *o.string_;
    case Kind::Array: return *array_ == *o.array_;
    case Kind::Object: {
      if (object_->entries.size() != o.object_->entries.size()) return false;
      for (const auto& [k, v] : object_->entries) {
        const Value* other = o.object_->find(k);
        if (!other || !(*other == v)) return false;
      }
      return true;
    }
    case Kind::Callable: return function_ == o.function_;
    default: return false;
  }
}

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void Object::set(const std::string& key, Value v) {
  for (auto& [k, old] : entries)
    if (k == key) {
      old = std::move(v);
      return;
    }
  entries.emplace_back(key, std::move(v));
}

Value Arguments::get(std::size_t index, std::string_view name, Value fallback) const {
  for (const auto& [k, v] : named)
    if (k == name) return v;
  if (index < positional.size()) return positional[index];
  return fallback;
}

}  // namespace aero::chat::jinja
