// The STM32F4's user option bytes on the host: RDP, nWRP and the user bits as FLASH_OPTCR
// shows them, programmed one operation at a time under the board's power supply, and the
// write protection they give the internal flash (docs/DESIGN.md, "Option bytes").
#pragma once

#include <cstdint>

#include "ota/option_bytes.hpp"
#include "sim/power.hpp"

namespace ota::sim {

class EmulatedFlash;

class EmulatedOptionBytes final : public OptionBytes {
 public:
  // `power` may be nullptr for a supply that never fails. Starts with the factory value.
  explicit EmulatedOptionBytes(PowerSupply* power) : power_(power) {}
  EmulatedOptionBytes(const EmulatedOptionBytes&) = delete;
  EmulatedOptionBytes& operator=(const EmulatedOptionBytes&) = delete;

  Result<UserOptionBytes> Read() override;
  // One mutating operation of the board's supply, so it can be cut (nothing changes) or torn
  // (see Torn). Refused with kWriteProtected before it starts, as the F4 sets WRPERR, when the
  // option bytes are at RDP level 2, or in PCROP mode when `value` clears SPRMOD or an active
  // PCROP bit without going from level 1 to level 0. Writing RDP 0xAA at level 1 mass-erases
  // the main flash (if one is attached) before the new value takes effect. A completed
  // program is in effect at once, for the internal flash too.
  Status Program(const UserOptionBytes& value) override;

  // What a torn program leaves (the configuration sector is erased, then programmed): `draw`
  // picks the phase and the bits. Erase phase: the old value with some bits erased to 1.
  // Program phase: erased (every bit 1) with some of the new value's 0 bits programmed.
  static UserOptionBytes Torn(const UserOptionBytes& before, const UserOptionBytes& after,
                              uint64_t phase_draw, uint64_t bits_draw);

  // The value in effect. set() is a programmer's write (ST-LINK before the loader ever ran):
  // not counted, not faulted.
  const UserOptionBytes& value() const { return value_; }
  void set(const UserOptionBytes& value) { value_ = value; }
  // True if the flash interface refuses program and erase in internal sector `index`.
  bool SectorProtected(uint32_t index) const {
    return index < kWrpSectorCount && (value_.ProtectedSectors() >> index & 1u) != 0;
  }
  // Program operations that reached the option bytes (completed or torn), and those refused.
  uint64_t program_ops() const { return program_ops_; }
  uint64_t refused_ops() const { return refused_ops_; }
  // The main flash a level 1 -> 0 regression erases (BoardFlash attaches its internal flash).
  void set_main_flash(EmulatedFlash* flash) { main_flash_ = flash; }

 private:
  bool Refuses(const UserOptionBytes& value) const;

  PowerSupply* power_;
  EmulatedFlash* main_flash_ = nullptr;
  UserOptionBytes value_;
  uint64_t program_ops_ = 0;
  uint64_t refused_ops_ = 0;
};

}  // namespace ota::sim
