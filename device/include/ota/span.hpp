// A minimal non-owning view of contiguous memory (std::span is C++20; device code is C++17).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ota {

template <typename T>
class Span {
 public:
  constexpr Span() = default;
  constexpr Span(T* data, size_t size) : data_(data), size_(size) {}
  template <size_t N>
  constexpr Span(T (&array)[N]) : data_(array), size_(N) {}  // NOLINT: implicit by design
  // A Span<T> converts to Span<const T>.
  template <typename U>
  constexpr Span(const Span<U>& other) : data_(other.data()), size_(other.size()) {}

  constexpr T* data() const { return data_; }
  constexpr size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr T& operator[](size_t i) const { return data_[i]; }
  constexpr T* begin() const { return data_; }
  constexpr T* end() const { return data_ + size_; }

  // Sub-views are clamped to the span, never past its end.
  constexpr Span first(size_t n) const { return Span(data_, n < size_ ? n : size_); }
  constexpr Span subspan(size_t offset, size_t n = static_cast<size_t>(-1)) const {
    if (offset > size_) offset = size_;
    const size_t rest = size_ - offset;
    return Span(data_ + offset, n < rest ? n : rest);
  }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

using ByteSpan = Span<uint8_t>;
using ConstByteSpan = Span<const uint8_t>;

}  // namespace ota
