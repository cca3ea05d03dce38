#include "aero/engine/chat.h"

#include <algorithm>

#include "aero/error.h"

namespace aero::engine {

namespace {
const char* const kChatMl =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

std::string token_text(const tokenizer::Tokenizer& tok, std::int32_t id) {
  return id >= 0 && id < tok.size() ? tok.vocab().tokens[id] : std::string();
}
}  // namespace

std::string StopStrings::push(std::string_view text) {
  if (stopped_) return {};
  held_ += text;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    if (auto at = held_.find(s); at != std::string::npos) {
      stopped_ = true;
      std::string shown = held_.substr(0, at);
      held_.clear();
      return shown;
    }
  }
  // Keep the longest tail that is a proper prefix of some stop string.
  std::size_t keep = 0;
  for (const auto& s : stops_)
    for (std::size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string shown = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return shown;
}

std::string StopStrings::finish() { return std::exchange(held_, {}); }

chat::Template model_chat_template(const tokenizer::Tokenizer& tok, bool* fallback) {
  const std::string& source = tok.vocab().chat_template;
  if (fallback) *fallback = source.empty();
  return chat::Template(source.empty() ? std::string(kChatMl) : source);
}

std::vector<std::int32_t> tokenize_prompt(const tokenizer::Tokenizer& tok, std::string_view text) {
  const auto& v = tok.vocab();
  const std::string bos = token_text(tok, v.bos);
  const bool has_bos = v.add_bos && !bos.empty() && text.starts_with(bos);
  auto ids = tok.encode(text, /*add_special=*/!has_bos, /*parse_special=*/true);
  return ids;
}

Chat::Chat(Session& session, Sampler& sampler, const tokenizer::Tokenizer& tok, ChatSettings settings)
    : session_(session),
      sampler_(sampler),
      tok_(tok),
      settings_(std::move(settings)),
      template_(model_chat_template(tok, &fallback_)) {
  reset();
}

void Chat::reset() {
  messages_.clear();
  if (!settings_.system.empty()) messages_.push_back({"system", settings_.system});
}

GenerationStats Chat::respond(const std::string& user, const std::function<bool(std::string_view)>& on_text) {
  messages_.push_back({"user", user});
  chat::ChatOptions options;
  options.add_generation_prompt = true;
  options.bos_token = token_text(tok_, tok_.vocab().bos);
  options.eos_token = token_text(tok_, tok_.vocab().eos);
  options.extra = settings_.template_variables;
  std::vector<std::int32_t> tokens;
  try {
    tokens = tokenize_prompt(tok_, chat::apply_chat_template(template_, messages_, options));
  } catch (...) {
    messages_.pop_back();
    throw;
  }
  if (static_cast<std::int64_t>(tokens.size()) >= session_.context()) {
    messages_.pop_back();
    fail("the conversation ({} tokens) no longer fits the context of {} tokens; /reset starts over", tokens.size(),
         session_.context());
  }

  // Reuse what the cache already holds; at least one token must run to get logits.
  std::size_t same = 0;
  const std::size_t held = std::min<std::size_t>(cached_.size(), static_cast<std::size_t>(session_.position()));
  while (same < held && same < tokens.size() && cached_[same] == tokens[same]) ++same;
  if (same == tokens.size()) --same;
  session_.rewind(static_cast<std::int64_t>(same));
  cached_.resize(same);  // what the cache holds until this turn completes, even if it fails

  const std::int64_t room = session_.context() - static_cast<std::int64_t>(tokens.size());
  GenerateOptions generate_options;
  generate_options.max_tokens = settings_.max_tokens < 0 ? room : std::min(settings_.max_tokens, room);
  generate_options.extra_stop_ids = tok_.vocab().end_of_generation;

  tokenizer::StreamDecoder decoder(tok_);
  StopStrings stops(settings_.stop);
  std::string answer;
  bool keep_going = true;
  std::vector<std::int32_t> generated;
  auto show = [&](const std::string& text) {
    if (text.empty() || !keep_going) return;
    answer += text;
    keep_going = on_text(text);
  };
  GenerationStats stats;
  try {
    stats = generate(session_, sampler_, std::span(tokens).subspan(same), generate_options, [&](std::int32_t id) {
      generated.push_back(id);
      show(stops.push(decoder.push(id)));
      return keep_going && !stops.stopped();
    });
  } catch (...) {
    messages_.pop_back();  // the turn did not happen
    throw;
  }
  if (!stops.stopped()) show(stops.push(decoder.finish()) + stops.finish());

  cached_ = tokens;
  cached_.insert(cached_.end(), generated.begin(), generated.end());
  cached_.resize(static_cast<std::size_t>(session_.position()));
  messages_.push_back({"assistant", answer});
  return stats;
}

}  // namespace aero::engine
