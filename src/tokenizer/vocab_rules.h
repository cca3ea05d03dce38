// Rules both vocabulary sources (GGUF, tokenizer.json) apply the same way.
#pragma once

#include "aero/tokenizer/vocab.h"

namespace aero::tokenizer {

// eos plus the control tokens that end a turn in common templates (<|eot_id|>, <|im_end|>,
// <|end|>, <end_of_turn>, ...), as llama.cpp collects them; `extra` ids first.
void collect_end_of_generation(Vocab& v, std::initializer_list<std::int32_t> extra = {});

}  // namespace aero::tokenizer
