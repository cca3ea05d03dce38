// Values of the Jinja interpreter: Python's None/bool/int/float/str/list/dict plus Jinja's
// undefined and callables. Lists and dicts are shared (Python reference semantics), so a
// namespace() or list.append() seen through two names changes both.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aero/json.h"

namespace aero::chat::jinja {

class Value;
using Array = std::vector<Value>;
struct Object;

struct Arguments;
using Function = std::function<Value(Arguments&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Callable };

  Value() = default;  // undefined
  static Value none() { return Value(Kind::None); }
  Value(bool b) : kind_(Kind::Bool), int_(b) {}
  Value(std::int64_t i) : kind_(Kind::Int), int_(i) {}
  Value(int i) : kind_(Kind::Int), int_(i) {}
  Value(double d) : kind_(Kind::Float), float_(d) {}
  Value(std::string s) : kind_(Kind::String), string_(std::make_shared<std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(Array a) : kind_(Kind::Array), array_(std::make_shared<Array>(std::move(a))) {}
  static Value object();
  static Value callable(Function f);
  static Value from_json(const Json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_callable() const { return kind_ == Kind::Callable; }

  bool truthy() const;
  std::int64_t as_int() const;     // bools and numbers
  double as_float() const;
  const std::string& str() const;  // strings only
  Array& array() const;            // arrays only
  Object& obj() const;             // objects only
  const Function& function() const;

  // Python's str() (what {{ }} prints; undefined prints nothing) and repr().
  std::string to_string() const;
  std::string repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent) as transformers' tojson filter does.
  std::string to_json(int indent = -1, int depth = 0) const;
  Json to_json_value() const;

  bool operator==(const Value& o) const;
  const char* type_name() const;

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::Undefined;
  std::int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<std::string> string_;
  std::shared_ptr<Array> array_;
  std::shared_ptr<Object> object_;
  std::shared_ptr<Function> function_;
};

// A dict in insertion order (what Python dicts and tojson keep).
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

struct Arguments {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
  // The argument at `index`, or named `name`, or `fallback`.
  Value get(std::size_t index, std::string_view name, Value fallback = {}) const;
};

}  // namespace aero::chat::jinja
