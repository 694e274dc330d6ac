#include "sim/power.hpp"

namespace ota::sim {

void PowerSupply::Arm(const FaultPlan& plan) {
  plan_ = plan;
  ops_since_arm_ = 0;
}

void PowerSupply::PowerOn() {
  lost_ = false;
  plan_ = FaultPlan{};
}

PowerDecision PowerSupply::BeginMutatingOp() {
  if (lost_) return PowerDecision::kCut;
  const uint64_t op = ops_since_arm_ + 1;
  // A cut wins over a tear planned for the same op: the op never starts.
  if (plan_.cut_before != 0 && op == plan_.cut_before) {
    lost_ = true;
    return PowerDecision::kCut;
  }
  ops_since_arm_ = op;
  ++total_ops_;
  if (plan_.tear != 0 && op == plan_.tear) {
    // Lost now already: the device finishes its partial op and then reports kPowerLost.
    lost_ = true;
    return PowerDecision::kTear;
  }
  return PowerDecision::kProceed;
}

}  // namespace ota::sim
