#include "aero/hub/hf_pull.h"

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "aero/error.h"
#include "aero/format/model_name.h"
#include "aero/hash.h"
#include "aero/json.h"
#include "aero/output_file.h"

namespace aero::hub {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxListingBytes = 64 << 20;
constexpr std::size_t kMaxErrorBody = 512;

// Weights in formats aero does not read, left out unless asked for by --include.
constexpr const char* kSkippedByDefault[] = {"*.bin", "*.pth", "*.pt", "*.h5", "*.msgpack", "*.onnx", "*.ot", "*.ckpt", "original/*"};

bool is_hex_of(std::string_view s, std::size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A repository path that stays inside the snapshot: relative, no empty, "." or ".." parts.
bool is_safe_repo_path(std::string_view p) {
  if (p.empty() || p.size() > 1024 || p.front() == '/') return false;
  for (std::size_t start = 0; start <= p.size();) {
    auto end = std::min(p.find('/', start), p.size());
    auto part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct MdDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// One HTTP exchange's state, shared with curl's callbacks (which must not throw).
struct Transfer {
  long status = 0;          // of the last response (redirects come first)
  std::string error_body;   // the body of a non-2xx response, cut short
  std::string* text = nullptr;  // a JSON answer, or
  FILE* out = nullptr;          // a file being downloaded
  EVP_MD_CTX* hash = nullptr;
  std::uint64_t offset = 0;     // bytes already in the file (a resumed download)
  std::uint64_t expected = 0;   // the file's full size
  std::uint64_t received = 0;
  bool too_large = false, write_failed = false;
  const std::function<void(std::uint64_t)>* on_bytes = nullptr;
  const EVP_MD* md = nullptr;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    auto space = line.find(' ');
    if (space != std::string_view::npos) t->status = std::strtol(std::string(line.substr(space + 1, 3)).c_str(), nullptr, 10);
  }
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t bytes = size * n;
  if (t->status < 200 || t->status >= 300) {
    t->error_body.append(data, std::min(bytes, kMaxErrorBody - std::min(kMaxErrorBody, t->error_body.size())));
    return bytes;
  }
  if (t->text) {
    if (t->text->size() + bytes > kMaxListingBytes) {
      t->too_large = true;
      return 0;
    }
    t->text->append(data, bytes);
    return bytes;
  }
  // A server that ignored the Range request sends the whole file again: start over.
  if (t->status == 200 && t->offset > 0 && t->received == 0) {
    if (std::fflush(t->out) != 0 || ::ftruncate(::fileno(t->out), 0) != 0 || std::fseek(t->out, 0, SEEK_SET) != 0) {
      t->write_failed = true;
      return 0;
    }
    EVP_DigestInit_ex(t->hash, t->md, nullptr);
    t->offset = 0;
  }
  if (t->offset + t->received + bytes > t->expected) {
    t->too_large = true;
    return 0;
  }
  if (std::fwrite(data, 1, bytes, t->out) != bytes) {
    t->write_failed = true;
    return 0;
  }
  EVP_DigestUpdate(t->hash, data, bytes);
  t->received += bytes;
  if (t->on_bytes && *t->on_bytes) (*t->on_bytes)(bytes);
  return bytes;
}

class Client {
 public:
  explicit Client(std::string endpoint) : endpoint_(std::move(endpoint)) {
    static CurlGlobal global;
    (void)global;
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    if (const char* token = std::getenv("HF_TOKEN"); token && *token) auth_ = std::string("Authorization: Bearer ") + token;
  }

  std::string url(std::initializer_list<std::string_view> parts) const {
    std::string u = endpoint_;
    std::unique_ptr<CURL, EasyDeleter> h(curl_easy_init());
    for (auto part : parts) {
      // Each path segment escaped on its own; '/' between a file's folders kept.
      for (std::size_t start = 0; start <= part.size();) {
        auto end = std::min(part.find('/', start), part.size());
        char* e = curl_easy_escape(h.get(), part.data() + start, static_cast<int>(end - start));
        u += "/";
        u += e;
        curl_free(e);
        start = end + 1;
      }
    }
    return u;
  }

  // Runs a GET; returns the curl result. `range_from` > 0 asks for the rest of a file.
  CURLcode get(const std::string& u, Transfer& t, std::uint64_t range_from = 0) const {
    std::unique_ptr<CURL, EasyDeleter> h(curl_easy_init());
    if (!h) fail("cannot start an HTTP client (curl_easy_init failed)");
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    if (!auth_.empty()) headers.reset(curl_slist_append(nullptr, auth_.c_str()));
    curl_easy_setopt(h.get(), CURLOPT_URL, u.c_str());
    curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h.get(), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h.get(), CURLOPT_USERAGENT, "aero/0.1");
    curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT, 30L);
    // A transfer that stalls (under 1 byte/s for a minute) is an interruption, resumed next time.
    curl_easy_setopt(h.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h.get(), CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h.get(), CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &t);
    if (headers) curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
    const std::string range = std::to_string(range_from) + "-";
    if (range_from > 0) curl_easy_setopt(h.get(), CURLOPT_RANGE, range.c_str());
    return curl_easy_perform(h.get());
  }

 private:
  std::string endpoint_;
  std::string auth_;
};

std::string http_problem(const Transfer& t, std::string_view what) {
  if (t.status == 401 || t.status == 403)
    return fmt::format("{}: access denied (HTTP {}: a gated or private repository needs HF_TOKEN)", what, t.status);
  if (t.status == 404) return fmt::format("{}: not found (HTTP 404)", what);
  std::string body = t.error_body;
  std::replace(body.begin(), body.end(), '\n', ' ');
  return fmt::format("{}: HTTP {}{}{}", what, t.status, body.empty() ? "" : ": ", body.substr(0, 200));
}

bool wanted(const HubFile& f, const std::vector<std::string>& include) {
  auto matches = [&](const std::string& pattern) { return ::fnmatch(pattern.c_str(), f.path.c_str(), 0) == 0; };
  if (!include.empty()) return std::any_of(include.begin(), include.end(), matches);
  for (const char* skip : kSkippedByDefault)
    if (matches(skip)) return false;
  return true;
}

// The hex digest of an open hash context (which it finishes).
std::string finish_hex(EVP_MD_CTX* ctx) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, out, &n);
  return to_hex({out, n});
}

// Feeds the first `bytes` of `path` into `ctx` (the part of a download made earlier).
void hash_prefix(const fs::path& path, std::uint64_t bytes, EVP_MD_CTX* ctx) {
  std::unique_ptr<FILE, FileCloser> in(std::fopen(path.c_str(), "rb"));
  if (!in) fail("cannot read {}", path.string());
  std::vector<char> buf(1 << 20);
  while (bytes > 0) {
    auto n = std::fread(buf.data(), 1, std::min<std::uint64_t>(bytes, buf.size()), in.get());
    if (n == 0) fail("cannot read {}", path.string());
    EVP_DigestUpdate(ctx, buf.data(), n);
    bytes -= n;
  }
}

// Makes `link` point at `target` by renaming a fresh symlink over it: never a moment without one.
void replace_symlink(const fs::path& target, const fs::path& link) {
  fs::path tmp = link;
  tmp += ".aero-link-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec) {
    fs::remove(tmp);
    fail("cannot link {}: {}", link.string(), ec.message());
  }
}

// Downloads one file into blobs/<id> (through <id>.incomplete). Returns the bytes fetched now.
std::uint64_t download(const Client& client, const std::string& u, const HubFile& f, const fs::path& blob,
                       const std::string& shown, const PullOptions& options) {
  const fs::path partial = fs::path(blob) += ".incomplete";
  std::error_code ec;
  std::uint64_t have = fs::is_regular_file(partial, ec) ? fs::file_size(partial, ec) : 0;
  if (ec || have > f.size) {
    fs::remove(partial, ec);
    have = 0;
  }
  // LFS files are named by their SHA-256; other files by their git blob id, SHA-1 over
  // "blob <size>\0" and the content.
  const EVP_MD* md = f.lfs ? EVP_sha256() : EVP_sha1();
  std::unique_ptr<EVP_MD_CTX, MdDeleter> ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), md, nullptr);
  Transfer t;
  t.md = md;
  t.hash = ctx.get();
  t.offset = have;
  t.expected = f.size;
  t.on_bytes = &options.on_bytes;
  if (options.on_file) options.on_file(f, have);
  if (!f.lfs) {
    const std::string header = "blob " + std::to_string(f.size);
    EVP_DigestUpdate(ctx.get(), header.c_str(), header.size() + 1);
  }
  if (have > 0) hash_prefix(partial, have, ctx.get());
  {
    std::unique_ptr<FILE, FileCloser> out(std::fopen(partial.c_str(), have > 0 ? "ab" : "wb"));
    if (!out) fail("cannot write {}", partial.string());
    t.out = out.get();
    CURLcode rc = have < f.size ? client.get(u, t, have) : CURLE_OK;
    if (std::fflush(out.get()) != 0) t.write_failed = true;
    if (t.write_failed) fail("{}: cannot write {} (disk full?)", shown, partial.string());
    if (t.too_large) {
      out.reset();
      fs::remove(partial, ec);
      fail("{}: {} is larger than the {} bytes the hub lists; removed", shown, f.path, f.size);
    }
    out.reset();
    // A file that never got a byte is no download to resume.
    if (f.size > 0 && t.offset + t.received == 0) fs::remove(partial, ec);
    if (t.status >= 300 || (rc == CURLE_OK && t.status != 0 && t.status < 200)) {
      // A 416 means the bytes we hold are no prefix of the file: start over next time.
      if (t.status == 416) fs::remove(partial, ec);
      fail("{}", http_problem(t, shown + ": " + f.path));
    }
    if (rc != CURLE_OK || t.offset + t.received != f.size)
      fail("{}: download of {} interrupted at {} of {} bytes ({}); run `aero pull` again to resume", shown, f.path,
           t.offset + t.received, f.size, rc != CURLE_OK ? curl_easy_strerror(rc) : "the server sent too little");
  }
  const std::string digest = finish_hex(ctx.get());
  if (digest != f.blob_id) {
    fs::remove(partial, ec);
    fail("{}: {} has {} {} where the hub lists {}; removed", shown, f.path, f.lfs ? "SHA-256" : "git blob id", digest, f.blob_id);
  }
  fs::rename(partial, blob, ec);
  if (ec) fail("cannot move {} into place: {}", partial.string(), ec.message());
  return t.received;
}

}  // namespace

HubListing parse_hub_listing(std::string_view json, std::string_view where) {
  const Json doc = parse_json(json, where);
  if (!doc.is_object()) fail("{}: not a JSON object", where);
  auto sha = doc.find("sha");
  if (sha == doc.end() || !sha->is_string() || !is_hex_of(sha->get<std::string>(), 40))
    fail("{}: no 'sha' (a 40-digit commit hash)", where);
  auto siblings = doc.find("siblings");
  if (siblings == doc.end() || !siblings->is_array()) fail("{}: no 'siblings' list", where);
  HubListing listing{sha->get<std::string>(), {}};
  for (const auto& s : *siblings) {
    if (!s.is_object()) fail("{}: a sibling is not an object", where);
    auto name = s.find("rfilename");
    if (name == s.end() || !name->is_string()) fail("{}: a sibling has no 'rfilename'", where);
    HubFile f;
    f.path = name->get<std::string>();
    if (!is_safe_repo_path(f.path)) fail("{}: file path '{}' would leave the snapshot folder", where, f.path);
    auto lfs = s.find("lfs");
    if (lfs != s.end() && !lfs->is_null()) {
      if (!lfs->is_object()) fail("{}: {}: 'lfs' is not an object", where, f.path);
      auto h = lfs->find("sha256");
      auto size = lfs->find("size");
      if (h == lfs->end() || !h->is_string() || !is_hex_of(h->get<std::string>(), 64) || size == lfs->end() ||
          !size->is_number_unsigned())
        fail("{}: {}: 'lfs' lacks a sha256 or size", where, f.path);
      f.lfs = true;
      f.blob_id = h->get<std::string>();
      f.size = size->get<std::uint64_t>();
    } else {
      auto id = s.find("blobId");
      auto size = s.find("size");
      if (id == s.end() || !id->is_string() || !is_hex_of(id->get<std::string>(), 40) || size == s.end() ||
          !size->is_number_unsigned())
        fail("{}: {}: no 'blobId' and 'size' (ask the API with ?blobs=true)", where, f.path);
      f.blob_id = id->get<std::string>();
      f.size = size->get<std::uint64_t>();
    }
    listing.files.push_back(std::move(f));
  }
  return listing;
}

PullResult pull_hf(std::string_view repo_id, const PullOptions& options) {
  const format::HfRepoId repo = format::parse_hf_repo_id(repo_id);
  const std::string shown = "hf:" + repo.id();
  if (options.revision.empty() || options.revision.find("..") != std::string::npos || options.revision.find('/') != std::string::npos)
    fail("{}: '{}' is not a revision name", shown, options.revision);
  std::string endpoint = options.endpoint;
  if (endpoint.empty()) endpoint = std::getenv("HF_ENDPOINT") ? std::getenv("HF_ENDPOINT") : "";
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  const Client client(endpoint);

  std::string listing_text;
  Transfer t;
  t.text = &listing_text;
  const std::string api = client.url({"api", "models", repo.org, repo.name, "revision", options.revision}) + "?blobs=true";
  CURLcode rc = client.get(api, t);
  if (t.too_large) fail("{}: the hub's file list is over {} MiB", shown, kMaxListingBytes >> 20);
  if (rc != CURLE_OK) fail("{}: cannot reach {} ({})", shown, endpoint, curl_easy_strerror(rc));
  if (t.status != 200) fail("{}", http_problem(t, shown + " revision " + options.revision));
  const HubListing listing = parse_hub_listing(listing_text, shown + ": the hub's file list");

  std::vector<HubFile> files;
  for (const auto& f : listing.files)
    if (wanted(f, options.include)) files.push_back(f);
  if (files.empty()) fail("{}: no file of the repository matches {}", shown, options.include.empty() ? "what aero reads" : "--include");
  if (options.include.empty()) {
    std::vector<std::string> ggufs;
    for (const auto& f : files)
      if (f.path.ends_with(".gguf")) ggufs.push_back(f.path);
    if (ggufs.size() > 1)
      fail("{}: the repository holds {} GGUF files ({}{}); choose with --include, e.g. --include '{}'", shown, ggufs.size(),
           fmt::join(ggufs.begin(), ggufs.begin() + std::min<std::size_t>(ggufs.size(), 4), ", "), ggufs.size() > 4 ? ", ..." : "",
           ggufs[0]);
  }

  const fs::path cache = options.cache.empty() ? format::hf_hub_cache() : options.cache;
  const fs::path dir = cache / repo.cache_folder();
  const fs::path snapshot = dir / "snapshots" / listing.commit;
  fs::create_directories(dir / "blobs");

  PullResult result{listing.commit, snapshot, files.size(), 0, 0};
  for (const auto& f : files) {
    const fs::path blob = dir / "blobs" / f.blob_id;
    std::error_code ec;
    if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f.size) {
      ++result.already_present;
      continue;
    }
    result.downloaded +=
        download(client, client.url({repo.org, repo.name, "resolve", listing.commit, f.path}), f, blob, shown, options);
  }
  // Only with every blob in place does the snapshot appear: relative links into blobs/, as
  // huggingface_hub makes them.
  for (const auto& f : files) {
    const fs::path link = snapshot / fs::path(f.path);
    fs::create_directories(link.parent_path());
    fs::path up = "..";
    for (auto d = fs::path(f.path).parent_path(); !d.empty(); d = d.parent_path()) up /= "..";
    replace_symlink(up / ".." / "blobs" / f.blob_id, link);
  }
  // The ref last: a name resolves only once every file it needs is in place.
  if (options.revision != listing.commit) {
    fs::create_directories(dir / "refs");
    OutputFile ref(dir / "refs" / options.revision);
    ref.write(listing.commit);
    ref.commit();
  }
  return result;
}

}  // namespace aero::hub
