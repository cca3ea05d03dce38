// A backend that hands every operation to another: tests derive from it to change one thing
// (where products run, how weights stream) and keep the rest of a real backend.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "aero/backend/backend.h"

namespace aero::test {

class ForwardingBackend : public backend::Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<backend::Backend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  std::unique_ptr<backend::WeightRing> create_weight_ring(int slots, std::uint64_t slot_bytes) override {
    return inner_->create_weight_ring(slots, slot_bytes);
  }
  float* allocate(std::size_t count) override { return inner_->allocate(count); }
  void read(const float* src, std::size_t count, float* host) override { inner_->read(src, count, host); }
  void write(const float* host, std::size_t count, float* dst) override { inner_->write(host, count, dst); }
  void embed(const quant::Matrix& table, std::span<const std::int32_t> ids, float* out) override {
    inner_->embed(table, ids, out);
  }
  using Backend::matmul;
  void matmul(std::span<const quant::Matrix* const> ws, const float* x, std::int64_t n, std::span<float* const> ys) override {
    inner_->matmul(ws, x, n, ys);
  }
  void rms_norm(const float* x, const float* weight, std::int64_t width, std::int64_t rows, double eps, float* y) override {
    inner_->rms_norm(x, weight, width, rows, eps, y);
  }
  void add_bias(float* x, std::span<const float> bias, std::int64_t rows) override { inner_->add_bias(x, bias, rows); }
  void add(float* x, const float* y, std::int64_t count) override { inner_->add(x, y, count); }
  void silu_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    inner_->silu_mul(gate, up, count, out);
  }
  void gelu_tanh_mul(const float* gate, const float* up, std::int64_t count, float* out) override {
    inner_->gelu_tanh_mul(gate, up, count, out);
  }
  void scale(float* x, std::int64_t count, float factor) override { inner_->scale(x, count, factor); }
  void softcap(float* x, std::int64_t count, float cap) override { inner_->softcap(x, count, cap); }
  void gather_rows(const float* src, std::span<const std::int32_t> rows, std::int64_t width, float* dst) override {
    inner_->gather_rows(src, rows, width, dst);
  }
  void scatter_add_rows(const float* src, std::span<const std::int32_t> rows, std::span<const float> weights,
                        std::int64_t width, float* dst) override {
    inner_->scatter_add_rows(src, rows, weights, width, dst);
  }
  void rope(float* x, std::int64_t n, std::int64_t heads, std::int64_t head_dim, std::span<const float> cos_sin,
            model::RopeLayout layout) override {
    inner_->rope(x, n, heads, head_dim, cos_sin, layout);
  }
  std::unique_ptr<backend::KvCache> create_kv_cache(std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim,
                                                    std::int64_t capacity, std::int64_t slots,
                                                    backend::KvType type) override {
    return inner_->create_kv_cache(layers, kv_heads, head_dim, capacity, slots, type);
  }
  void attention(backend::KvCache& cache, std::int64_t layer, const float* q, const float* k, const float* v,
                 std::span<const std::int32_t> slots, std::span<const std::int32_t> positions, std::int64_t heads,
                 float* out, const backend::AttentionOptions& options) override {
    inner_->attention(cache, layer, q, k, v, slots, positions, heads, out, options);
  }

 protected:
  std::unique_ptr<backend::Backend> inner_;
};

}  // namespace aero::test
