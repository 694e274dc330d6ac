#include "sim/emulated_flash.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "ota/bytes.hpp"
#include "sim/option_bytes.hpp"

namespace ota::sim {
namespace {

// pwrite/pread may transfer less than asked; this loops until done or an error.
template <typename Buffer, typename Io>
bool TransferAll(Io io, int fd, Buffer* data, size_t len, off_t offset) {
  while (len > 0) {
    const ssize_t n = io(fd, data, len, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

bool WriteAll(int fd, const uint8_t* data, size_t len, off_t offset) {
  return TransferAll(::pwrite, fd, data, len, offset);
}

bool ReadAll(int fd, uint8_t* data, size_t len, off_t offset) {
  return TransferAll(::pread, fd, data, len, offset);
}

// Opens `path` read-write. A missing file is first created with `initial` contents under a
// temporary name and renamed into place, so a crash never leaves a short file behind.
// Returns -1 with `status` set on failure.
int OpenOrCreate(const std::string& path, const std::vector<uint8_t>& initial, Status* status) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT) {
    if (fd < 0) *status = StatusCode::kIoError;
    return fd;
  }
  const std::string temp_path = path + ".tmp";
  fd = ::open(temp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *status = StatusCode::kIoError;
    return -1;
  }
  if (!WriteAll(fd, initial.data(), initial.size(), 0) ||
      ::rename(temp_path.c_str(), path.c_str()) != 0) {
    ::close(fd);
    ::unlink(temp_path.c_str());
    *status = StatusCode::kIoError;
    return -1;
  }
  return fd;
}

// Loads the whole file at `fd` into `out`, which must already have the expected size.
Status Load(int fd, std::vector<uint8_t>* out) {
  struct stat info;
  if (::fstat(fd, &info) != 0) return StatusCode::kIoError;
  if (static_cast<uint64_t>(info.st_size) != out->size()) return StatusCode::kInvalidArgument;
  if (!ReadAll(fd, out->data(), out->size(), 0)) return StatusCode::kIoError;
  return Status::Ok();
}

// Same seed and op number, same generator, so a torn op can be replayed byte for byte.
std::mt19937_64 TearRng(uint64_t seed, uint64_t op) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(op), static_cast<uint32_t>(op >> 32)};
  return std::mt19937_64(seq);
}

// The engine's output is fixed by the standard, the distributions' is not: draw with a
// plain modulo (bias < 2^-32 here) so the same seed gives the same bytes on every library.
uint64_t Below(std::mt19937_64& rng, uint64_t bound) {
  return rng() % bound;
}

}  // namespace

uint64_t FlashCounters::erase_ops_of(uint32_t size) const {
  const auto it = erase_ops_by_size.find(size);
  return it == erase_ops_by_size.end() ? 0 : it->second;
}

FlashCounters& FlashCounters::operator+=(const FlashCounters& other) {
  read_calls += other.read_calls;
  read_bytes += other.read_bytes;
  program_ops += other.program_ops;
  program_bytes += other.program_bytes;
  erase_ops += other.erase_ops;
  erased_bytes += other.erased_bytes;
  for (const auto& [size, ops] : other.erase_ops_by_size)
    erase_ops_by_size[size] += ops;
  time_typ_us += other.time_typ_us;
  time_max_us += other.time_max_us;
  return *this;
}

EmulatedFlash::EmulatedFlash(const FlashGeometry& geometry, const FlashTiming& timing,
                             PowerSupply* power)
    : Flash(geometry),
      timing_(timing),
      power_(power),
      contents_(geometry.total_size(), kErased),
      wear_(geometry.sector_count(), 0) {}

EmulatedFlash::~EmulatedFlash() {
  CloseFile();
}

Status EmulatedFlash::OpenFile(const std::string& path) {
  CloseFile();
  // Load into copies first: a rejected file leaves the device as it was.
  std::vector<uint8_t> contents(contents_.size(), kErased);
  std::vector<uint8_t> wear_bytes(wear_.size() * 4, 0);
  Status status;
  const int data_fd = OpenOrCreate(path, contents, &status);
  if (data_fd < 0) return status;
  status = Load(data_fd, &contents);
  if (!status.ok()) {
    ::close(data_fd);
    return status;
  }
  const int wear_fd = OpenOrCreate(path + ".wear", wear_bytes, &status);
  if (wear_fd < 0) {
    ::close(data_fd);
    return status;
  }
  status = Load(wear_fd, &wear_bytes);
  if (!status.ok()) {
    ::close(data_fd);
    ::close(wear_fd);
    return status;
  }
  contents_ = std::move(contents);
  for (size_t i = 0; i < wear_.size(); ++i)
    wear_[i] = LoadLe32(&wear_bytes[i * 4]);
  data_fd_ = data_fd;
  wear_fd_ = wear_fd;
  return Status::Ok();
}

void EmulatedFlash::CloseFile() {
  if (data_fd_ >= 0) ::close(data_fd_);
  if (wear_fd_ >= 0) ::close(wear_fd_);
  data_fd_ = -1;
  wear_fd_ = -1;
}

void EmulatedFlash::ResetCounters() {
  counters_ = FlashCounters{};
  read_time_us_ = 0;
}

Status EmulatedFlash::DoRead(uint32_t addr, ByteSpan out) {
  if (PowerLost()) return StatusCode::kPowerLost;
  std::memcpy(out.data(), &contents_[addr], out.size());
  ++counters_.read_calls;
  counters_.read_bytes += out.size();
  AddReadTime(timing_.ReadCostUs(out.size()));
  return Status::Ok();
}

Status EmulatedFlash::DoProgram(uint32_t addr, ConstByteSpan data) {
  if (PowerLost()) return StatusCode::kPowerLost;
  // Check the whole call first, so a bad call changes nothing at all.
  OTA_TRY(CheckNotProtected(addr, data.size()));
  for (size_t i = 0; i < data.size(); ++i) {
    if ((contents_[addr + i] & data[i]) != data[i]) return StatusCode::kNotErased;
  }
  // SPI NOR: one page program command (the base class keeps it inside one page).
  // STM32F4: the driver programs one word per PG cycle, each its own op.
  const size_t unit = geometry().program_page != 0   ? data.size()
                      : geometry().program_align > 0 ? geometry().program_align
                                                     : 1;
  for (size_t offset = 0; offset < data.size(); offset += unit) {
    OTA_TRY(ProgramOp(addr + static_cast<uint32_t>(offset), data.subspan(offset, unit)));
  }
  return Status::Ok();
}

Status EmulatedFlash::DoErase(uint32_t addr, uint32_t len) {
  if (PowerLost()) return StatusCode::kPowerLost;
  OTA_TRY(CheckNotProtected(addr, len));
  const uint32_t end = addr + len;
  for (uint32_t pos = addr; pos < end;) {
    const uint32_t size = EraseOpSize(pos, end - pos);
    OTA_TRY(EraseOp(pos, size));
    pos += size;
  }
  return Status::Ok();
}

PowerDecision EmulatedFlash::BeginMutatingOp() {
  return power_ != nullptr ? power_->BeginMutatingOp() : PowerDecision::kProceed;
}

Status EmulatedFlash::ProgramOp(uint32_t addr, ConstByteSpan data) {
  const PowerDecision decision = BeginMutatingOp();
  if (decision == PowerDecision::kCut) return StatusCode::kPowerLost;
  ++counters_.program_ops;
  counters_.program_bytes += data.size();
  counters_.time_typ_us += timing_.program_typ_us;
  counters_.time_max_us += timing_.program_max_us;

  uint8_t* cells = &contents_[addr];
  size_t programmed = data.size();
  if (decision == PowerDecision::kTear) {
    // Bytes before `programmed` complete, the byte at it gets only some of its zero bits,
    // the rest keep their old value.
    std::mt19937_64 rng = TearRng(power_->plan().seed, power_->ops_since_arm());
    programmed = Below(rng, data.size());
    const auto random_mask = static_cast<uint8_t>(rng());
    cells[programmed] &= static_cast<uint8_t>(data[programmed] | random_mask);
  }
  for (size_t i = 0; i < programmed; ++i)
    cells[i] &= data[i];

  OTA_TRY(WriteThrough(addr, data.size()));
  return decision == PowerDecision::kTear ? StatusCode::kPowerLost : StatusCode::kOk;
}

Status EmulatedFlash::EraseOp(uint32_t addr, uint32_t size) {
  const PowerDecision decision = BeginMutatingOp();
  if (decision == PowerDecision::kCut) return StatusCode::kPowerLost;
  ++counters_.erase_ops;
  counters_.erased_bytes += size;
  ++counters_.erase_ops_by_size[size];
  const EraseTiming cost = timing_.EraseCost(size);
  counters_.time_typ_us += cost.typ_us;
  counters_.time_max_us += cost.max_us;

  uint8_t* cells = &contents_[addr];
  if (decision == PowerDecision::kTear) {
    // An interrupted erase leaves each byte erased, untouched or somewhere between; erase
    // only moves bits toward 1.
    std::mt19937_64 rng = TearRng(power_->plan().seed, power_->ops_since_arm());
    for (uint32_t i = 0; i < size; ++i) {
      const uint64_t draw = rng();
      switch (draw % 3) {
        case 0:
          cells[i] = kErased;
          break;
        case 1:
          break;
        default:
          cells[i] |= static_cast<uint8_t>(draw >> 8);
          break;
      }
    }
  } else {
    std::memset(cells, kErased, size);
  }

  // Every sector the command covered was stressed, torn or not.
  const uint32_t first_sector = geometry().SectorAt(addr)->index;
  uint32_t sector_count = 0;
  for (uint32_t pos = addr; pos < addr + size; ++sector_count) {
    const SectorInfo sector = *geometry().SectorAt(pos);
    ++wear_[sector.index];
    pos = sector.offset + sector.size;
  }

  OTA_TRY(WriteThrough(addr, size));
  OTA_TRY(WriteWearThrough(first_sector, sector_count));
  return decision == PowerDecision::kTear ? StatusCode::kPowerLost : StatusCode::kOk;
}

uint32_t EmulatedFlash::EraseOpSize(uint32_t addr, uint32_t remaining) const {
  return geometry().EraseCommandSize(addr, remaining);
}

Status EmulatedFlash::CheckNotProtected(uint32_t addr, size_t len) const {
  if (option_bytes_ == nullptr) return Status::Ok();
  for (size_t pos = addr; pos < addr + len;) {
    const SectorInfo sector = *geometry().SectorAt(static_cast<uint32_t>(pos));
    if (option_bytes_->SectorProtected(sector.index)) return StatusCode::kWriteProtected;
    pos = size_t{sector.offset} + sector.size;
  }
  return Status::Ok();
}

Status EmulatedFlash::WriteThrough(uint32_t addr, size_t len) {
  if (data_fd_ < 0) return Status::Ok();
  // No fsync: the file has to survive the process being killed, not the host crashing.
  if (!WriteAll(data_fd_, &contents_[addr], len, static_cast<off_t>(addr))) {
    return StatusCode::kIoError;
  }
  return Status::Ok();
}

Status EmulatedFlash::WriteWearThrough(uint32_t first_sector, uint32_t count) {
  if (wear_fd_ < 0) return Status::Ok();
  std::vector<uint8_t> bytes(size_t{count} * 4);
  for (uint32_t i = 0; i < count; ++i)
    StoreLe32(&bytes[i * 4], wear_[first_sector + i]);
  if (!WriteAll(wear_fd_, bytes.data(), bytes.size(), static_cast<off_t>(first_sector) * 4)) {
    return StatusCode::kIoError;
  }
  return Status::Ok();
}

void EmulatedFlash::AddReadTime(double us) {
  // Count whole microseconds as the fractions add up.
  const auto before = static_cast<uint64_t>(read_time_us_);
  read_time_us_ += us;
  const uint64_t whole = static_cast<uint64_t>(read_time_us_) - before;
  counters_.time_typ_us += whole;
  counters_.time_max_us += whole;
}

}  // namespace ota::sim
