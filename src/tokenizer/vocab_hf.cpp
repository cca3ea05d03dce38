#include "aero/error.h"
#include "aero/tokenizer/vocab.h"
namespace aero::tokenizer {
Vocab vocab_from_hf(const std::string&, const std::string&) { fail("tokenizer.json: not yet"); }
}  // namespace aero::tokenizer
