#include "sim/board_flash.hpp"

namespace ota::sim {

BoardFlash::BoardFlash(const BoardProfile& profile)
    : option_bytes(&power),
      internal(profile.internal, kStm32f4InternalTiming, &power),
      external(profile.external, kW25q128Timing, &power),
      otp(&power) {
  internal.set_option_bytes(&option_bytes);
  option_bytes.set_main_flash(&internal);
}

void BoardFlash::CopyCellsFrom(const BoardFlash& other) {
  internal.raw() = other.internal.raw();
  external.raw() = other.external.raw();
  otp.cells().raw() = other.otp.cells().raw();
  option_bytes.set(other.option_bytes.value());
}

FlashCounters BoardFlash::counters() const {
  FlashCounters sum = internal.counters();
  sum += external.counters();
  sum += otp.cells().counters();
  return sum;
}

void BoardFlash::ResetCounters() {
  internal.ResetCounters();
  external.ResetCounters();
  otp.cells().ResetCounters();
}

}  // namespace ota::sim
