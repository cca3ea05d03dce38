// The parsed form of a template: expressions and statements, evaluated by jinja_eval.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "jinja_value.h"

namespace aero::chat::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> named;
};

struct Expr {
  enum class Type {
    Literal, Name, List, Dict, Attribute, Index, Slice, Call, Filter, Test, Unary, Binary, Ternary,
  } type;
  int line = 0;
  Value literal;               // Literal
  std::string name;            // Name, Attribute, Filter/Test name, operator of Unary/Binary
  ExprPtr a, b, c;             // operands: object/left/condition, index/right/then, else/step
  std::vector<ExprPtr> items;  // List (and tuples), Dict keys and values interleaved
  CallArgs args;               // Call, Filter, Test
  bool negated = false;        // Test: "is not"
  bool has_slice_start = false, has_slice_stop = false;

  Expr(Type t, int l) : type(t), line(l) {}
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Type { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, CallBlock, FilterBlock } type;
  int line = 0;
  std::string text;                        // Text
  ExprPtr expr;                            // Output, For iterable, Set value, CallBlock call
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (condition, body); else has a null condition
  std::vector<std::string> targets;        // For/Set: names (several = unpacking); Set "ns.attr" as ns + attr
  std::string attribute;                   // Set: ns.attr
  ExprPtr condition;                       // For: the inline "if" filter
  Body body, else_body;                    // For, SetBlock, Macro, CallBlock, FilterBlock
  std::string name;                        // Macro, FilterBlock filter
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro: name, default (may be null)

  Node(Type t, int l) : type(t), line(l) {}
};

struct Program {
  Body body;
};

// Parses a template with HF's settings (trim_blocks, lstrip_blocks); throws aero::Error
// naming the line of the problem.
std::unique_ptr<Program> parse(const std::string& source);

}  // namespace aero::chat::jinja
