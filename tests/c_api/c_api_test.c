/* The C ABI from C, against the shared fixtures:
 *  - a Hugging Face fixture's tensors (names, types, shapes, bytes) against its safetensors
 *    header and data, read here by a few lines of C, not by aero;
 *  - the f32 copies of llama.cpp-quantized tensors against the BLAKE3 of gguf-py's reference
 *    dequantization (fixtures/quant/MANIFEST.json);
 *  - greedy generation from ids against transformers' greedy_ids;
 *  - a model opened by name from a Hugging Face cache laid out in a temporary folder;
 *  - failures: NULL / -1 and a one-line message.
 * Usage: c_api_test SHARED_DIR. Exits 77 (skipped) when the fixtures are absent. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aero/aero.h"
#include "blake3.h"

static int failures = 0;

#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) {                                       \
      fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                      \
      fprintf(stderr, " [aero: %s]\n", aero_last_error()); \
      ++failures;                                        \
    }                                                    \
  } while (0)

static char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
  buf[n] = 0;
  fclose(f);
  *size = (size_t)n;
  return buf;
}

/* ---- a safetensors file read by hand: 8-byte header length, compact JSON header, data ---- */
typedef struct {
  char* bytes;
  size_t size;
  char* header; /* NUL-terminated copy */
  const unsigned char* data;
} safetensors;

static int st_open(safetensors* st, const char* path) {
  st->bytes = read_file(path, &st->size);
  if (!st->bytes || st->size < 8) return 0;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | (unsigned char)st->bytes[i];
  st->header = malloc(n + 1);
  memcpy(st->header, st->bytes + 8, n);
  st->header[n] = 0;
  st->data = (const unsigned char*)st->bytes + 8 + n;
  return 1;
}

static void st_close(safetensors* st) {
  free(st->bytes);
  free(st->header);
}

/* Reads the integers of the JSON array that follows `key` inside the object at `from`. */
static int read_ints(const char* from, const char* key, uint64_t* out, int max) {
  const char* p = strstr(from, key);
  const char* end = strchr(from, '}');
  if (!p || (end && p > end)) return -1;
  p = strchr(p, '[');
  int n = 0;
  while (p && *p != ']' && n < max) {
    ++p;
    if (*p == ']') break;
    out[n++] = strtoull(p, (char**)&p, 10);
  }
  return n;
}

/* One tensor's entry: dtype, shape, data offsets. 0 when the header has no such tensor. */
static int st_find(const safetensors* st, const char* name, char dtype[16], uint64_t* shape, int* n_dims,
                   uint64_t offsets[2]) {
  char key[512];
  snprintf(key, sizeof key, "\"%s\":{", name);
  const char* at = strstr(st->header, key);
  if (!at) return 0;
  at += strlen(key) - 1;
  const char* d = strstr(at, "\"dtype\":\"");
  if (!d) return 0;
  d += 9;
  size_t len = strcspn(d, "\"");
  if (len >= 16) return 0;
  memcpy(dtype, d, len);
  dtype[len] = 0;
  *n_dims = read_ints(at, "\"shape\"", shape, AERO_MAX_DIMS);
  return read_ints(at, "\"data_offsets\"", offsets, 2) == 2;
}

static int st_count(const safetensors* st) {
  int n = 0;
  for (const char* p = st->header; (p = strstr(p, "\"data_offsets\"")); ++p) ++n;
  return n;
}

static int32_t* st_ints(const safetensors* st, const char* name, size_t* count) {
  char dtype[16];
  uint64_t shape[AERO_MAX_DIMS], off[2];
  int n_dims = 0;
  if (!st_find(st, name, dtype, shape, &n_dims, off) || strcmp(dtype, "I32") != 0) return NULL;
  *count = (size_t)(off[1] - off[0]) / 4;
  int32_t* v = malloc(off[1] - off[0]);
  memcpy(v, st->data + off[0], off[1] - off[0]);
  return v;
}

/* ---- the checks ---- */

static void tensors_match_file(const char* shared) {
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/fixtures/hf/llama", shared);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  safetensors st;
  CHECK(st_open(&st, path), "cannot read %s", path);
  aero_model* m = aero_model_open(dir);
  CHECK(m != NULL, "aero_model_open(%s)", dir);
  if (!m) return;
  CHECK(strcmp(aero_model_architecture(m), "llama") == 0, "architecture '%s'", aero_model_architecture(m));
  const size_t count = aero_model_tensor_count(m);
  CHECK(count == (size_t)st_count(&st) && count > 0, "%zu tensors where the file has %d", count, st_count(&st));
  for (size_t i = 0; i < count; ++i) {
    aero_tensor_info info;
    CHECK(aero_model_tensor_info(m, i, &info) == 0, "tensor_info %zu", i);
    char dtype[16];
    uint64_t shape[AERO_MAX_DIMS], off[2];
    int n_dims = 0;
    if (!st_find(&st, info.name, dtype, shape, &n_dims, off)) {
      CHECK(0, "aero lists %s, which the file does not hold", info.name);
      continue;
    }
    CHECK(strcmp(dtype, info.type) == 0, "%s: type %s, file %s", info.name, info.type, dtype);
    CHECK(n_dims == info.n_dims, "%s: %d dims, file %d", info.name, info.n_dims, n_dims);
    uint64_t elements = 1;
    for (int d = 0; d < n_dims && d < info.n_dims; ++d) {
      CHECK(shape[d] == info.shape[d], "%s: dim %d", info.name, d);
      elements *= shape[d];
    }
    CHECK(info.n_elements == elements, "%s: elements", info.name);
    CHECK(info.n_bytes == off[1] - off[0], "%s: %llu bytes, file %llu", info.name, (unsigned long long)info.n_bytes,
          (unsigned long long)(off[1] - off[0]));
    CHECK(aero_model_find_tensor(m, info.name) == (int64_t)i, "find %s", info.name);
    const void* bytes = aero_model_tensor_data(m, i);
    CHECK(bytes && memcmp(bytes, st.data + off[0], info.n_bytes) == 0, "%s: stored bytes differ from the file", info.name);
    /* f32 weights: the f32 copy is the stored values themselves. */
    const float* values = aero_model_tensor_f32(m, i);
    CHECK(values && memcmp(values, st.data + off[0], info.n_bytes) == 0, "%s: f32 copy differs", info.name);
  }
  CHECK(aero_model_find_tensor(m, "no.such.tensor") == -1 && strstr(aero_last_error(), "no.such.tensor"),
        "a missing tensor is -1 with its name in the message");
  aero_tensor_info info;
  CHECK(aero_model_tensor_info(m, count, &info) == -1 && strstr(aero_last_error(), "out of range"), "index past the end");
  aero_model_free(m);
  st_close(&st);
}

static void dequantized_match_reference(const char* shared) {
  char path[4200];
  snprintf(path, sizeof path, "%s/fixtures/quant/MANIFEST.json", shared);
  size_t size = 0;
  char* manifest = read_file(path, &size);
  CHECK(manifest != NULL, "cannot read %s", path);
  if (!manifest) return;
  snprintf(path, sizeof path, "%s/fixtures/quant/quant-blocks.gguf", shared);
  aero_model* m = aero_model_open(path);
  CHECK(m != NULL, "aero_model_open(%s)", path);
  int checked = 0;
  for (const char* p = manifest; m && (p = strstr(p, "\"name\": \"")); ++p) {
    char name[256];
    const char* s = p + 9;
    size_t len = strcspn(s, "\"");
    if (len >= sizeof name) continue;
    memcpy(name, s, len);
    name[len] = 0;
    const char* h = strstr(s, "\"dequant_blake3\": \"");
    const char* type = strstr(s, "\"type_name\": \"");
    if (!h || !type) continue;
    h += 19;
    type += 14;
    int64_t index = aero_model_find_tensor(m, name);
    CHECK(index >= 0, "%s missing", name);
    if (index < 0) continue;
    aero_tensor_info info;
    aero_model_tensor_info(m, (size_t)index, &info);
    CHECK(strncmp(type, info.type, strlen(info.type)) == 0 && type[strlen(info.type)] == '"', "%s: type %s", name, info.type);
    const float* values = aero_model_tensor_f32(m, (size_t)index);
    CHECK(values != NULL, "%s: no f32 copy", name);
    if (!values) continue;
    CHECK(aero_model_tensor_f32(m, (size_t)index) == values, "%s: the f32 copy is made once", name);
    blake3_hasher hasher;
    blake3_hasher_init(&hasher);
    blake3_hasher_update(&hasher, values, info.n_elements * sizeof(float));
    uint8_t digest[BLAKE3_OUT_LEN];
    blake3_hasher_finalize(&hasher, digest, BLAKE3_OUT_LEN);
    char hex[2 * BLAKE3_OUT_LEN + 1];
    for (int i = 0; i < BLAKE3_OUT_LEN; ++i) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    CHECK(strncmp(hex, h, 64) == 0, "%s (%s): dequantized values differ from gguf-py's", name, info.type);
    ++checked;
  }
  CHECK(checked == 36, "%d quantized tensors checked, the manifest has 36", checked);
  aero_model_free(m);
  free(manifest);
}

typedef struct {
  int32_t ids[256];
  size_t n;
  size_t stop_after;
} collected;

static int collect(const char* piece, size_t piece_len, int32_t id, void* user) {
  collected* c = user;
  (void)piece;
  if (piece_len != 0) ++failures; /* no tokenizer: no text */
  if (c->n < 256) c->ids[c->n++] = id;
  return c->stop_after && c->n >= c->stop_after;
}

static void greedy_matches_transformers(const char* shared) {
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/fixtures/hf/llama", shared);
  snprintf(path, sizeof path, "%s/reference.safetensors", dir);
  safetensors ref;
  CHECK(st_open(&ref, path), "cannot read %s", path);
  size_t n_prompt = 0, n_greedy = 0;
  int32_t* prompt = st_ints(&ref, "prompt_ids", &n_prompt);
  int32_t* greedy = st_ints(&ref, "greedy_ids", &n_greedy);
  CHECK(prompt && greedy && n_greedy > n_prompt, "reference ids");
  aero_model* m = aero_model_open(dir);
  aero_session_options so = aero_session_default_options();
  so.device = "cpu";
  so.threads = 2;
  aero_session* s = m ? aero_session_create(m, &so) : NULL;
  CHECK(s != NULL, "aero_session_create");
  if (s && prompt && greedy) {
    aero_generate_options go = aero_generate_default_options();
    go.temperature = 0;
    go.ignore_eos = 1;
    go.max_tokens = (int64_t)(n_greedy - n_prompt);
    collected c = {{0}, 0, 0};
    int64_t n = aero_generate_ids(s, prompt, n_prompt, &go, collect, &c);
    CHECK(n == go.max_tokens && c.n == (size_t)n, "%lld tokens generated", (long long)n);
    for (size_t i = 0; i < c.n && n_prompt + i < n_greedy; ++i)
      CHECK(c.ids[i] == greedy[n_prompt + i], "token %zu: %d, transformers %d", i, c.ids[i], greedy[n_prompt + i]);
    /* A nonzero callback stops; reset starts the conversation over with the same result. */
    aero_session_reset(s);
    collected early = {{0}, 0, 3};
    CHECK(aero_generate_ids(s, prompt, n_prompt, &go, collect, &early) == 3, "stopped after 3");
    CHECK(early.n == 3 && early.ids[0] == greedy[n_prompt] && early.ids[2] == greedy[n_prompt + 2], "first 3 tokens");
    /* Failures: no tokenizer for text, ids outside the vocabulary. */
    CHECK(aero_generate(s, "hello", &go, collect, &c) == -1 && strstr(aero_last_error(), "tokenizer"), "text without a tokenizer");
    int32_t bad = 1 << 30;
    CHECK(aero_generate_ids(s, &bad, 1, &go, collect, &c) == -1 && strstr(aero_last_error(), "vocabulary"), "bad id");
  }
  aero_session_free(s);
  aero_model_free(m);
  free(prompt);
  free(greedy);
  st_close(&ref);
}

static void opens_by_name(const char* shared) {
  char root[] = "/tmp/aero-c-api-XXXXXX";
  if (!mkdtemp(root)) return;
  const char* commit = "0123456789abcdef0123456789abcdef01234567";
  char p[8192], target[8192];
  snprintf(p, sizeof p, "%s/models--org--tiny", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/models--org--tiny/refs", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/models--org--tiny/snapshots", root);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/%s", root, commit);
  mkdir(p, 0700);
  snprintf(p, sizeof p, "%s/models--org--tiny/refs/main", root);
  FILE* f = fopen(p, "w");
  fputs(commit, f);
  fclose(f);
  const char* files[] = {"config.json", "model.safetensors"};
  for (int i = 0; i < 2; ++i) {
    snprintf(target, sizeof target, "%s/fixtures/hf/llama/%s", shared, files[i]);
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/%s/%s", root, commit, files[i]);
    CHECK(symlink(target, p) == 0, "symlink %s", p);
  }
  setenv("HF_HUB_CACHE", root, 1);
  aero_model* m = aero_model_open("hf:org/tiny");
  CHECK(m != NULL, "aero_model_open(hf:org/tiny)");
  if (m) CHECK(strcmp(aero_model_name(m), "org/tiny") == 0, "name '%s'", aero_model_name(m));
  aero_model_free(m);
  CHECK(aero_model_open("hf:org/absent") == NULL && strstr(aero_last_error(), "not in the Hugging Face cache"), "absent model");
  CHECK(aero_model_open("ollama:../../etc") == NULL && strstr(aero_last_error(), "not an Ollama model name"), "bad name");
  CHECK(aero_model_open("/no/such/model.gguf") == NULL && strchr(aero_last_error(), '\n') == NULL &&
            strstr(aero_last_error(), "no such file"),
        "a missing file is NULL and one line");
  CHECK(aero_model_open(NULL) == NULL, "NULL name");
  snprintf(p, sizeof p, "rm -rf '%s'", root);
  if (system(p) != 0) ++failures;
}

int main(int argc, char** argv) {
  const char* shared = argc > 1 ? argv[1] : "../shared";
  char probe[4200];
  struct stat sb;
  snprintf(probe, sizeof probe, "%s/fixtures/hf/llama/model.safetensors", shared);
  if (stat(probe, &sb) != 0) {
    printf("skipped: shared fixtures not found at %s\n", shared);
    return 77;
  }
  tensors_match_file(shared);
  dequantized_match_reference(shared);
  greedy_matches_transformers(shared);
  opens_by_name(shared);
  aero_model_free(NULL);
  aero_session_free(NULL);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C ABI: all checks passed\n");
  return 0;
}
