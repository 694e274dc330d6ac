#include "ota/watchdog.hpp"

namespace ota {

Status KickingFlash::DoRead(uint32_t addr, ByteSpan out) {
  watchdog_.Kick();
  return inner_.Read(addr, out);
}

Status KickingFlash::DoProgram(uint32_t addr, ConstByteSpan data) {
  watchdog_.Kick();
  return inner_.Program(addr, data);
}

Status KickingFlash::DoErase(uint32_t addr, uint32_t len) {
  const uint32_t end = addr + len;
  for (uint32_t pos = addr; pos < end;) {
    const uint32_t size = geometry().EraseCommandSize(pos, end - pos);
    watchdog_.Kick();
    OTA_TRY(inner_.Erase(pos, size));
    pos += size;
  }
  return Status::Ok();
}

}  // namespace ota
