// Error values for device code: no exceptions, every result is checked.
#pragma once

#include <cstdint>
#include <utility>

namespace ota {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,     // the caller passed something the callee cannot take
  kOutOfRange,          // address or length outside the device or area
  kMisaligned,          // address or length not on the required boundary
  kNotErased,           // program over bits that are not erased (would need 0 -> 1)
  kPowerLost,           // the (simulated) supply is gone; nothing more reaches flash
  kIoError,             // the device reported a failure
  kCorrupt,             // data failed an integrity check (CRC, magic, hash)
  kNotFound,            // nothing valid where something was expected
  kTooLarge,            // does not fit the slot, region or buffer
  kVerifyFailed,        // a hash or signature does not match
  kUnsupported,         // a format, kind or option this build does not handle
  kFailedPrecondition,  // the system is not in a state that allows the call
  kTimedOut,            // a peer (modem, server) did not answer in time
  kBadVectorTable,      // an intact app image whose initial SP or reset vector cannot start it
  kWriteProtected,      // the sector (or the option bytes) is write-protected: WRPERR
};

const char* StatusCodeName(StatusCode code);

// A [[nodiscard]] status: ignoring a returned Status is a compile error under -Werror.
class [[nodiscard]] Status {
 public:
  constexpr Status() = default;
  constexpr Status(StatusCode code) : code_(code) {}  // NOLINT: implicit by design

  static constexpr Status Ok() { return Status(); }
  constexpr bool ok() const { return code_ == StatusCode::kOk; }
  constexpr StatusCode code() const { return code_; }
  const char* name() const { return StatusCodeName(code_); }

  constexpr bool operator==(Status other) const { return code_ == other.code_; }
  constexpr bool operator!=(Status other) const { return code_ != other.code_; }

  // Marks a status as deliberately unused, with the reason visible at the call site.
  constexpr void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
};

// A value or an error. T must be default-constructible (no heap, no exceptions).
template <typename T>
class [[nodiscard]] Result {
 public:
  constexpr Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  constexpr Result(Status status) : status_(status) {}     // NOLINT: implicit by design
  constexpr Result(StatusCode code) : status_(code) {}     // NOLINT: implicit by design

  constexpr bool ok() const { return status_.ok(); }
  constexpr Status status() const { return status_; }
  constexpr const T& value() const& { return value_; }
  constexpr T& value() & { return value_; }
  constexpr T&& value() && { return std::move(value_); }
  constexpr const T& operator*() const { return value_; }
  constexpr const T* operator->() const { return &value_; }

 private:
  T value_{};
  Status status_;
};

}  // namespace ota

#define OTA_CONCAT_INNER(a, b) a##b
#define OTA_CONCAT(a, b) OTA_CONCAT_INNER(a, b)

// Returns the status from the enclosing function if `expr` failed.
#define OTA_TRY(expr)                        \
  do {                                       \
    const ::ota::Status ota_try_s_ = (expr); \
    if (!ota_try_s_.ok()) return ota_try_s_; \
  } while (0)

// Declares `lhs` from a Result, or returns its status from the enclosing function.
#define OTA_TRY_ASSIGN(lhs, expr) OTA_TRY_ASSIGN_IMPL(OTA_CONCAT(ota_r_, __LINE__), lhs, expr)
#define OTA_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                        \
  if (!tmp.ok()) return tmp.status();       \
  lhs = std::move(tmp).value()
