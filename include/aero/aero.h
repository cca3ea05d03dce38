/* aero's C ABI (C99): open a model, read its tensors, generate with a token callback.
 *
 * Built as the shared library libaero_c. Every function returns a status or NULL on failure
 * and never lets an exception or a signal escape; the failure's one-line message is then
 * aero_last_error() (per thread). Each object is freed by its own function, and objects are
 * freed before the objects they came from (sessions before their model).
 *
 * A model object may be used from several threads for reading tensors; a session from one
 * thread at a time. */
#ifndef AERO_AERO_H
#define AERO_AERO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define AERO_API __attribute__((visibility("default")))
#else
#define AERO_API
#endif

#define AERO_MAX_DIMS 8

typedef struct aero_model aero_model;
typedef struct aero_session aero_session;

/* The message of the last failure on this thread ("" when none). Valid until the next call
 * into aero on this thread. */
AERO_API const char* aero_last_error(void);

/* ---- models and tensors ---- */

/* NAME: a .aero file, AEROSET, GGUF, safetensors, Hugging Face folder, or a model name:
 * hf:ORG/NAME[@REV][/FILE] (or a bare ORG/NAME that is no path) from the Hugging Face cache,
 * ollama:NAME[:TAG] from Ollama's store. NULL on failure. */
AERO_API aero_model* aero_model_open(const char* name);
AERO_API void aero_model_free(aero_model* model);

/* The model's name and architecture as its metadata states them ("" when it does not). */
AERO_API const char* aero_model_name(const aero_model* model);
AERO_API const char* aero_model_architecture(const aero_model* model);

typedef struct aero_tensor_info {
  const char* name;      /* owned by the model */
  const char* type;      /* "F32", "F16", "BF16", "Q4_0", "Q4_K", "I32", ... (owned by the model) */
  int32_t ggml_type;     /* the GGUF type number, -1 for types GGUF lacks (U8, BOOL, ...) */
  int32_t n_dims;
  uint64_t shape[AERO_MAX_DIMS]; /* row-major: slowest dimension first */
  uint64_t n_elements;
  uint64_t n_bytes;      /* the stored bytes (blocks for quantized types) */
} aero_tensor_info;

AERO_API size_t aero_model_tensor_count(const aero_model* model);
/* Fills `out` for tensor `index` (0 .. count-1). 0 on success, -1 on failure. */
AERO_API int aero_model_tensor_info(const aero_model* model, size_t index, aero_tensor_info* out);
/* The index of the tensor named `name`, or -1 (with an error) when there is none. */
AERO_API int64_t aero_model_find_tensor(const aero_model* model, const char* name);
/* The tensor's stored bytes (n_bytes of them), read-only, inside the mapped file: valid until
 * aero_model_free. */
AERO_API const void* aero_model_tensor_data(const aero_model* model, size_t index);
/* The tensor's values as f32 (n_elements of them), decoded once by aero's reference decoders
 * and kept by the model until aero_model_free. NULL for integer tensors and types aero cannot
 * decode. */
AERO_API const float* aero_model_tensor_f32(aero_model* model, size_t index);

/* ---- sessions and generation ---- */

typedef struct aero_session_options {
  const char* device; /* "auto" (default: a CUDA GPU when there is one), "cpu", "cuda", "cuda:N" */
  int64_t context;    /* tokens; 0: the model's trained context, at most 4096 */
  int32_t threads;    /* CPU threads; 0: all cores */
} aero_session_options;

AERO_API aero_session_options aero_session_default_options(void);
/* A conversation with the model: KV cache and position. `options` may be NULL (defaults). The
 * model must outlive the session. NULL on failure (unsupported architecture, bad device). */
AERO_API aero_session* aero_session_create(aero_model* model, const aero_session_options* options);
AERO_API void aero_session_free(aero_session* session);
/* Forgets what the session holds (generation starts again at position 0). */
AERO_API void aero_session_reset(aero_session* session);

typedef struct aero_generate_options {
  int64_t max_tokens;      /* default 128 */
  float temperature;       /* 0: greedy; default 0.8 */
  int32_t top_k;           /* 0: off; default 40 */
  float top_p;             /* 1: off; default 0.95 */
  float min_p;             /* 0: off; default 0.05 */
  float repeat_penalty;    /* 1: off; default 1 */
  uint64_t seed;           /* 0xFFFFFFFF: random (default) */
  int32_t ignore_eos;      /* nonzero: go on past end-of-generation tokens */
} aero_generate_options;

AERO_API aero_generate_options aero_generate_default_options(void);

/* Called for each generated token: `piece` is the text it completes (`piece_len` bytes, not
 * NUL-terminated, possibly empty: a multi-byte character waits for its last token; always
 * empty for a model without a tokenizer). Return nonzero to stop. */
typedef int (*aero_token_callback)(const char* piece, size_t piece_len, int32_t id, void* user_data);

/* Tokenizes `prompt` (the model's BOS rules), runs it after whatever the session holds and
 * generates. Returns the number of tokens generated, or -1 on failure. `options` may be NULL. */
AERO_API int64_t aero_generate(aero_session* session, const char* prompt, const aero_generate_options* options,
                               aero_token_callback callback, void* user_data);
/* The same from token ids (no tokenizer needed). */
AERO_API int64_t aero_generate_ids(aero_session* session, const int32_t* ids, size_t n_ids,
                                   const aero_generate_options* options, aero_token_callback callback,
                                   void* user_data);

#ifdef __cplusplus
}
#endif

#endif /* AERO_AERO_H */
