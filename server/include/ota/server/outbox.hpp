// The transactional outbox: a message that a state change implies is written in the same
// database transaction as the change, published after the commit, and deleted only when the
// broker acknowledged it (QoS 1). A crash or a broker outage between the two therefore re-sends
// the message (at least once), never loses it. Devices take every platform message twice
// without harm: a version_query is answered again, a firmware_upgrade resumes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ota/server/database.hpp"
#include "ota/server/device_protocol.hpp"

namespace ota::server {

struct QueuedMessage {
  int64_t id = 0;
  Outgoing message;
};

class Outbox {
 public:
  explicit Outbox(Database& db) : db_(db) {}

  // Inside the caller's transaction. `task_id`/`device_id`: what the message is for (0/"":
  // nothing), so that it is dropped when that ends (DropFor).
  QueuedMessage Add(const Outgoing& message, int64_t now, int64_t task_id = 0,
                    const std::string& device_id = "");
  // A task cancelled, or a device's row of it superseded: its unsent commands are dropped
  // (a device must not act on a command its task no longer wants). `device_id` "": all.
  void DropFor(int64_t task_id, const std::string& device_id = "");
  // Messages queued at or before `created_before`, and control messages to the broker
  // (broker::kControlTopicPrefix: nobody else sends them) whenever queued; oldest first.
  std::vector<QueuedMessage> Pending(int64_t created_before, size_t limit);
  // Acknowledged by the broker.
  void Remove(const std::vector<int64_t>& ids);
  // Drops messages older than `created_before` (their state machine re-sends what still
  // matters: version queries every kQueryInterval, firmware_upgrade on the resend timer);
  // returns their IDs. Control messages to the broker are kept until it acknowledged them:
  // nothing else would close a deleted device's connection.
  std::vector<int64_t> Expire(int64_t created_before);
  int64_t Size();

 private:
  Database& db_;
};

}  // namespace ota::server
