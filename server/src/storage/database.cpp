#include "ota/server/database.hpp"

namespace ota::server {

namespace {
[[noreturn]] void Throw(sqlite3* db, std::string_view what) {
  throw DbError(std::string(what) + ": " + sqlite3_errmsg(db));
}
}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st_, nullptr) !=
      SQLITE_OK) {
    Throw(db, "prepare '" + std::string(sql.substr(0, 60)) + "'");
  }
}

Statement::~Statement() {
  sqlite3_finalize(st_);
}

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text(st_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(st_, index, value);
  return *this;
}
Statement& Statement::BindBlob(int index, const std::vector<uint8_t>& blob) {
  sqlite3_bind_blob(st_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(st_, index);
  return *this;
}

bool Statement::Step() {
  const int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Throw(db_, "step");
}

int Statement::Run() {
  while (Step()) {
  }
  return sqlite3_changes(db_);
}

Statement& Statement::Reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
  return *this;
}

std::string Statement::Text(int column) const {
  const auto* p = sqlite3_column_text(st_, column);
  return p != nullptr ? std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(st_, column)))
                      : std::string();
}
int64_t Statement::Int(int column) const {
  return sqlite3_column_int64(st_, column);
}
std::vector<uint8_t> Statement::Blob(int column) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st_, column));
  return std::vector<uint8_t>(p, p + sqlite3_column_bytes(st_, column));
}
bool Statement::IsNull(int column) const {
  return sqlite3_column_type(st_, column) == SQLITE_NULL;
}

Database::Database(const std::filesystem::path& path, bool read_only) {
  const int flags = read_only ? SQLITE_OPEN_READONLY
                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : "cannot open";
    sqlite3_close(db_);
    throw DbError(path.string() + ": " + why);
  }
  sqlite3_busy_timeout(db_, 5000);
  if (read_only) return;  // a reader of a WAL database the writer set up
  Exec("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;");
}

Database::~Database() {
  sqlite3_close(db_);
}

void Database::Exec(std::string_view sql) {
  char* msg = nullptr;
  const std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    const std::string why = msg != nullptr ? msg : "error";
    sqlite3_free(msg);
    throw DbError(why);
  }
}

int Database::SchemaVersion() {
  Statement st = Prepare("PRAGMA user_version");
  return st.Step() ? static_cast<int>(st.Int(0)) : 0;
}

void Database::Migrate(const std::vector<std::string>& migrations) {
  for (int v = SchemaVersion(); v < static_cast<int>(migrations.size()); ++v) {
    Transaction tx(*this);
    Exec(migrations[static_cast<size_t>(v)]);
    Exec("PRAGMA user_version = " + std::to_string(v + 1));
    tx.Commit();
  }
}

Transaction::Transaction(Database& db) : db_(db), outer_(db.tx_depth_ == 0) {
  if (outer_) {
    start_ = std::chrono::steady_clock::now();
    db_.Exec("BEGIN IMMEDIATE");
    db_.tx_failed_ = false;
  }
  ++db_.tx_depth_;
}

Transaction::~Transaction() {
  --db_.tx_depth_;
  if (done_) return;
  if (!outer_) {
    db_.tx_failed_ = true;
    return;
  }
  try {
    db_.Exec("ROLLBACK");
  } catch (const DbError&) {
    // Nothing to roll back (the statement that failed ended the transaction).
  }
  Observe(false);
}

void Transaction::Observe(bool committed) {
  if (!db_.on_transaction_) return;
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start_;
  db_.on_transaction_(took.count(), committed);
}

void Transaction::Commit() {
  if (outer_) {
    if (db_.tx_failed_) throw DbError("an inner transaction did not commit");
    db_.Exec("COMMIT");
    Observe(true);
  }
  done_ = true;
}

}  // namespace ota::server
