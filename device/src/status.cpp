#include "ota/status.hpp"

namespace ota {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid-argument";
    case StatusCode::kOutOfRange:
      return "out-of-range";
    case StatusCode::kMisaligned:
      return "misaligned";
    case StatusCode::kNotErased:
      return "not-erased";
    case StatusCode::kPowerLost:
      return "power-lost";
    case StatusCode::kIoError:
      return "io-error";
    case StatusCode::kCorrupt:
      return "corrupt";
    case StatusCode::kNotFound:
      return "not-found";
    case StatusCode::kTooLarge:
      return "too-large";
    case StatusCode::kVerifyFailed:
      return "verify-failed";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kFailedPrecondition:
      return "failed-precondition";
    case StatusCode::kTimedOut:
      return "timed-out";
    case StatusCode::kBadVectorTable:
      return "bad-vector-table";
    case StatusCode::kWriteProtected:
      return "write-protected";
  }
  return "unknown";
}

}  // namespace ota
