// The simulated supply of one board: every flash device of the board shares it, so one
// fault plan numbers the mutating operations of all devices in the order they happen.
#pragma once

#include <atomic>
#include <cstdint>

namespace ota::sim {

// Where power fails, in 1-based mutating-op numbers counted from PowerSupply::Arm.
struct FaultPlan {
  uint64_t cut_before = 0;  // op N is not performed at all and power is lost; 0 = none
  uint64_t tear = 0;        // op N is performed partially, then power is lost; 0 = none
  uint64_t seed = 0;        // picks what a torn op leaves behind (same seed, same bytes)
};

// What a device does with the mutating op it is about to perform.
enum class PowerDecision {
  kProceed,  // perform it fully
  kCut,      // do not perform it; power is gone (or already was)
  kTear,     // perform it partially; power is gone afterwards
};

class PowerSupply {
 public:
  // Starts counting ops from 1 under `plan`. A plan of all zeros only counts.
  void Arm(const FaultPlan& plan);
  // The next boot: power is back and no fault is planned. Op counting continues.
  void PowerOn();
  // Loses power now, between operations (e.g. a reset the harness injects itself). Safe to
  // call from another thread: the operation under way completes, the next one is cut.
  void CutNow() { lost_ = true; }

  // Called by a device before each program or erase op; counts the op unless it is cut.
  // Reads are not counted and never faulted: a cut before a read leaves the flash exactly
  // as a cut after the previous mutating op does, so cutting at mutating ops covers all
  // distinct states.
  PowerDecision BeginMutatingOp();

  // Mutating ops that reached a flash (completed or torn) since Arm; a cut op is not
  // counted. So after `cut_before = N` this is N - 1, after `tear = N` it is N.
  uint64_t ops_since_arm() const { return ops_since_arm_; }
  // The same, since construction.
  uint64_t total_ops() const { return total_ops_; }
  bool lost() const { return lost_; }
  const FaultPlan& plan() const { return plan_; }

 private:
  FaultPlan plan_;
  uint64_t ops_since_arm_ = 0;
  uint64_t total_ops_ = 0;
  std::atomic<bool> lost_{false};
};

}  // namespace ota::sim
