// Python/Jinja semantics for values: attribute and item access, slicing, iteration,
// operators, the methods of str/list/dict, and Jinja's filters and tests.
#pragma once

#include <optional>
#include <string>

#include "jinja_value.h"

namespace aero::chat::jinja {

Value get_attribute(const Value& object, const std::string& name);
Value get_item(const Value& object, const Value& key);
Value slice(const Value& object, const Value& start, const Value& stop, const Value& step);
Array iterate(const Value& v);  // list items, dict keys, string characters; nothing for none/undefined
Value binary_op(const std::string& op, const Value& l, const Value& r);
std::optional<Value> call_method(const Value& object, const std::string& name, Arguments& args);
Value apply_filter(const std::string& name, const Value& input, Arguments& args);
bool apply_test(const std::string& name, const Value& v, Arguments& args);

}  // namespace aero::chat::jinja
