#include "test_installers.hpp"

namespace ota::testing {

Status CorruptingInstaller::Apply(const InstallerContext& ctx, const FlashArea& /*old*/,
                                  SlotWriter& out) {
  uint8_t buf[256];
  for (uint32_t off = 0; off < ctx.staged_size; off += sizeof(buf)) {
    const ByteSpan chunk = ByteSpan(buf).first(ctx.staged_size - off);
    OTA_TRY(ctx.staged.Read(off, chunk));
    if (off == 1024) buf[17] ^= 0x01;
    OTA_TRY(out.Write(chunk));
  }
  return out.Finish();
}

}  // namespace ota::testing
