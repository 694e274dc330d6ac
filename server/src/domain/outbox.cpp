#include "ota/server/outbox.hpp"

#include "ota/broker/control.hpp"

namespace ota::server {

QueuedMessage Outbox::Add(const Outgoing& message, int64_t now, int64_t task_id,
                          const std::string& device_id) {
  Statement st = db_.Prepare(
      "INSERT INTO outbox (topic, payload, created_at, task_id, device_id) VALUES (?, ?, ?, ?, ?)");
  st.Bind(1, message.topic).Bind(2, message.payload).Bind(3, now);
  if (task_id != 0) {
    st.Bind(4, task_id).Bind(5, device_id);
  } else {
    st.BindNull(4).BindNull(5);
  }
  st.Run();
  return {db_.LastInsertId(), message};
}

void Outbox::DropFor(int64_t task_id, const std::string& device_id) {
  db_.Prepare("DELETE FROM outbox WHERE task_id = ?1 AND (?2 = '' OR device_id = ?2)")
      .Bind(1, task_id)
      .Bind(2, device_id)
      .Run();
}

namespace {
// SQL: the row's topic is a control topic (?9 is kControlTopicPrefix).
constexpr const char* kIsControl = "substr(topic, 1, length(?9)) = ?9";
}  // namespace

std::vector<QueuedMessage> Outbox::Pending(int64_t created_before, size_t limit) {
  Statement st =
      db_.Prepare(std::string("SELECT id, topic, payload FROM outbox WHERE created_at <= ?1 OR ") +
                  kIsControl + " ORDER BY id LIMIT ?2");
  st.Bind(1, created_before)
      .Bind(2, static_cast<int64_t>(limit))
      .Bind(9, std::string(broker::kControlTopicPrefix));
  std::vector<QueuedMessage> out;
  while (st.Step())
    out.push_back({st.Int(0), {st.Text(1), st.Text(2)}});
  return out;
}

void Outbox::Remove(const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  Transaction tx(db_);
  Statement del = db_.Prepare("DELETE FROM outbox WHERE id = ?");
  for (int64_t id : ids)
    del.Reset().Bind(1, id).Run();
  tx.Commit();
}

std::vector<int64_t> Outbox::Expire(int64_t created_before) {
  std::vector<int64_t> ids;
  const std::string old = std::string("created_at < ?1 AND NOT ") + kIsControl;
  const std::string prefix(broker::kControlTopicPrefix);
  Statement st = db_.Prepare("SELECT id FROM outbox WHERE " + old);
  st.Bind(1, created_before).Bind(9, prefix);
  while (st.Step())
    ids.push_back(st.Int(0));
  if (!ids.empty()) {
    db_.Prepare("DELETE FROM outbox WHERE " + old).Bind(1, created_before).Bind(9, prefix).Run();
  }
  return ids;
}

int64_t Outbox::Size() {
  Statement st = db_.Prepare("SELECT COUNT(*) FROM outbox");
  return st.Step() ? st.Int(0) : 0;
}

}  // namespace ota::server
