#include "aero/json.h"

#include "aero/error.h"

namespace aero {
namespace {

// Builds the DOM like nlohmann's own parser but refuses nesting deeper than the limit.
class DepthLimitedSax : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  explicit DepthLimitedSax(Json& result) : json_sax_dom_parser(result, /*allow_exceptions=*/false) {}

  bool start_object(std::size_t n) {
    if (++depth_ > kMaxMetadataDepth) return too_deep();
    return json_sax_dom_parser::start_object(n);
  }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool start_array(std::size_t n) {
    if (++depth_ > kMaxMetadataDepth) return too_deep();
    return json_sax_dom_parser::start_array(n);
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& e) {
    message_ = e.what();
    (void)position;
    (void)token;
    return false;
  }
  const std::string& message() const { return message_; }

 private:
  bool too_deep() {
    message_ = fmt::format("nesting deeper than {}", kMaxMetadataDepth);
    return false;
  }
  int depth_ = 0;
  std::string message_;
};

}  // namespace

Json parse_msgpack(std::span<const std::uint8_t> bytes, std::string_view what, bool zero_padded) {
  Json result;
  DepthLimitedSax sax(result);
  bool ok = Json::sax_parse(bytes.begin(), bytes.end(), &sax, nlohmann::detail::input_format_t::msgpack,
                            /*strict=*/!zero_padded);
  if (ok && zero_padded) {
    // Non-strict parsing stopped after the first value; whatever follows must be padding.
    std::size_t used = to_msgpack(result).size();
    for (std::size_t i = used; i < bytes.size() && ok; ++i) ok = bytes[i] == 0;
    if (!ok) fail("{}: malformed MessagePack (unexpected bytes after the value)", what);
  }
  if (!ok) fail("{}: malformed MessagePack ({})", what, sax.message().empty() ? "truncated" : sax.message());
  return result;
}

Json parse_json(std::string_view text, std::string_view what) {
  Json result;
  DepthLimitedSax sax(result);
  bool ok = Json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                            /*strict=*/true);
  if (!ok) fail("{}: malformed JSON ({})", what, sax.message().empty() ? "truncated" : sax.message());
  return result;
}

std::string to_msgpack(const Json& value) {
  std::string out;
  Json::to_msgpack(value, nlohmann::detail::output_adapter<char, std::string>(out));
  return out;
}

std::string to_sorted_compact_json(const Json& value) {
  // nlohmann::json (unordered) stores objects in std::map: keys come out sorted.
  // ensure_ascii matches Python's json.dumps default.
  return nlohmann::json(value).dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
}

std::string to_pretty_json(const Json& value) {
  return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace aero
