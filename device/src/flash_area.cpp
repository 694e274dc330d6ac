#include "ota/flash_area.hpp"

#include <algorithm>
#include <cstring>

namespace ota {

Status FlashArea::Read(uint32_t off, ByteSpan out) const {
  if (flash_ == nullptr) return StatusCode::kFailedPrecondition;
  if (!Contains(off, static_cast<uint32_t>(out.size())) || out.size() > size_) {
    return StatusCode::kOutOfRange;
  }
  return flash_->Read(offset_ + off, out);
}

Status FlashArea::Program(uint32_t off, ConstByteSpan data) const {
  if (flash_ == nullptr) return StatusCode::kFailedPrecondition;
  if (data.size() > size_ || !Contains(off, static_cast<uint32_t>(data.size()))) {
    return StatusCode::kOutOfRange;
  }
  const uint32_t page = flash_->geometry().program_page;
  size_t done = 0;
  while (done < data.size()) {
    const uint32_t addr = offset_ + off + static_cast<uint32_t>(done);
    size_t chunk = data.size() - done;
    if (page != 0) {
      const uint32_t room = page - addr % page;
      if (chunk > room) chunk = room;
    }
    OTA_TRY(flash_->Program(addr, data.subspan(done, chunk)));
    done += chunk;
  }
  return Status::Ok();
}

Status FlashArea::Erase(uint32_t off, uint32_t len) const {
  if (flash_ == nullptr) return StatusCode::kFailedPrecondition;
  if (!Contains(off, len)) return StatusCode::kOutOfRange;
  return flash_->Erase(offset_ + off, len);
}

Status FlashArea::EraseCovering(uint32_t off, uint32_t len) const {
  if (flash_ == nullptr) return StatusCode::kFailedPrecondition;
  if (!Contains(off, len)) return StatusCode::kOutOfRange;
  if (len == 0) return Status::Ok();
  const FlashGeometry& g = flash_->geometry();
  OTA_TRY_ASSIGN(const SectorInfo first, g.SectorAt(offset_ + off));
  OTA_TRY_ASSIGN(const SectorInfo last, g.SectorAt(offset_ + off + len - 1));
  const uint32_t begin = first.offset;
  const uint32_t end = last.offset + last.size;
  // The sectors must not reach outside the partition (partitions are sector-aligned).
  if (begin < offset_ || end > offset_ + size_) return StatusCode::kMisaligned;
  return flash_->Erase(begin, end - begin);
}

Result<bool> FlashArea::IsErased(uint32_t off, uint32_t len, ByteSpan work) const {
  if (work.empty()) return StatusCode::kInvalidArgument;
  uint32_t done = 0;
  while (done < len) {
    const ByteSpan chunk = work.first(len - done);
    OTA_TRY(Read(off + done, chunk));
    for (uint8_t b : chunk) {
      if (b != Flash::kErased) return false;
    }
    done += static_cast<uint32_t>(chunk.size());
  }
  return true;
}

FlashArea OpenPartition(const BoardProfile& profile, Flash* const (&flashes)[kFlashCount],
                        PartitionId id) {
  const Partition& p = profile.partition(id);
  return FlashArea(*flashes[static_cast<int>(p.flash)], p.offset, p.size);
}

Status SlotWriter::EnsureErased(uint32_t end) {
  const Flash& flash = area_.flash();
  const FlashGeometry& g = flash.geometry();
  while (erased_end_ < end) {
    const uint32_t addr = area_.offset() + erased_end_;
    OTA_TRY_ASSIGN(const SectorInfo sector, g.SectorAt(addr));
    if (sector.offset != addr) return StatusCode::kMisaligned;
    // The end of the last sector the image needs: never erase beyond it.
    OTA_TRY_ASSIGN(const SectorInfo last, g.SectorAt(area_.offset() + total_ - 1));
    const uint32_t limit = last.offset + last.size;
    uint32_t len = sector.size;
    for (uint32_t block : g.block_erase_sizes) {
      if (block > len && addr % block == 0 && addr + block <= limit) {
        len = block;
        break;
      }
    }
    OTA_TRY(area_.Erase(erased_end_, len));
    erased_end_ += len;
  }
  return Status::Ok();
}

Status SlotWriter::ProgramAligned(ConstByteSpan data) {
  OTA_TRY(EnsureErased(programmed_ + static_cast<uint32_t>(data.size())));
  OTA_TRY(area_.Program(programmed_, data));
  programmed_ += static_cast<uint32_t>(data.size());
  return Status::Ok();
}

Status SlotWriter::Write(ConstByteSpan data) {
  if (data.size() > total_ - written_) return StatusCode::kTooLarge;
  const uint32_t align = area_.flash().geometry().program_align;
  if (align == 0 || align > kMaxProgramAlign) return StatusCode::kUnsupported;
  written_ += static_cast<uint32_t>(data.size());
  // Top up a held-back partial unit first.
  if (pending_len_ > 0) {
    const size_t take = std::min<size_t>(align - pending_len_, data.size());
    std::memcpy(pending_ + pending_len_, data.data(), take);
    pending_len_ += static_cast<uint32_t>(take);
    data = data.subspan(take);
    if (pending_len_ < align) return Status::Ok();
    OTA_TRY(ProgramAligned(ConstByteSpan(pending_, align)));
    pending_len_ = 0;
  }
  const size_t whole = data.size() - data.size() % align;
  if (whole > 0) OTA_TRY(ProgramAligned(data.first(whole)));
  const ConstByteSpan tail = data.subspan(whole);
  std::memcpy(pending_, tail.data(), tail.size());
  pending_len_ = static_cast<uint32_t>(tail.size());
  return Status::Ok();
}

Status SlotWriter::Finish() {
  if (pending_len_ == 0) return Status::Ok();
  const uint32_t align = area_.flash().geometry().program_align;
  std::memset(pending_ + pending_len_, Flash::kErased, align - pending_len_);
  // The padded unit may reach past `total_` but stays within the image's last sector.
  if (programmed_ + align > area_.size()) return StatusCode::kOutOfRange;
  OTA_TRY(EnsureErased(std::min(programmed_ + align, total_)));
  OTA_TRY(area_.Program(programmed_, ConstByteSpan(pending_, align)));
  programmed_ += align;
  pending_len_ = 0;
  return Status::Ok();
}

Status CopyToWriter(const FlashArea& src, uint32_t len, SlotWriter& dst, ByteSpan work) {
  if (work.empty()) return StatusCode::kInvalidArgument;
  uint32_t done = 0;
  while (done < len) {
    const ByteSpan chunk = work.first(len - done);
    OTA_TRY(src.Read(done, chunk));
    OTA_TRY(dst.Write(chunk));
    done += static_cast<uint32_t>(chunk.size());
  }
  return dst.Finish();
}

Status HashArea(const FlashArea& area, uint32_t off, uint32_t len, ByteSpan work,
                Sha256Digest out) {
  if (work.empty()) return StatusCode::kInvalidArgument;
  Sha256 sha;
  uint32_t done = 0;
  while (done < len) {
    const ByteSpan chunk = work.first(len - done);
    OTA_TRY(area.Read(off + done, chunk));
    OTA_TRY(sha.Update(chunk));
    done += static_cast<uint32_t>(chunk.size());
  }
  return sha.Finish(out);
}

}  // namespace ota
