#include "ota/server/outbox.hpp"

namespace ota::server {

QueuedMessage Outbox::Add(const Outgoing& message, int64_t now) {
  db_.Prepare("INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)")
      .Bind(1, message.topic)
      .Bind(2, message.payload)
      .Bind(3, now)
      .Run();
  return {db_.LastInsertId(), message};
}

std::vector<QueuedMessage> Outbox::Pending(int64_t created_before, size_t limit) {
  Statement st = db_.Prepare(
      "SELECT id, topic, payload FROM outbox WHERE created_at <= ? ORDER BY id LIMIT ?");
  st.Bind(1, created_before).Bind(2, static_cast<int64_t>(limit));
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

int Outbox::Expire(int64_t created_before) {
  return db_.Prepare("DELETE FROM outbox WHERE created_at < ?").Bind(1, created_before).Run();
}

int64_t Outbox::Size() {
  Statement st = db_.Prepare("SELECT COUNT(*) FROM outbox");
  return st.Step() ? st.Int(0) : 0;
}

}  // namespace ota::server
