// A thin RAII layer over SQLite: one connection, prepared statements with typed binds,
// transactions, and numbered schema migrations. Errors are exceptions (host code): a failed
// statement aborts the request that ran it, and its transaction rolls back.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ota::server {

struct DbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Database;

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept : db_(other.db_), st_(other.st_) { other.st_ = nullptr; }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, bool value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& BindBlob(int index, const std::vector<uint8_t>& blob);
  Statement& BindNull(int index);

  // True while a row is available.
  bool Step();
  // Runs to completion; returns the number of rows changed.
  int Run();
  // Ready to bind and run again (bindings cleared): one prepared statement for many rows.
  Statement& Reset();

  std::string Text(int column) const;
  int64_t Int(int column) const;
  std::vector<uint8_t> Blob(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

class Database {
 public:
  explicit Database(const std::filesystem::path& path, bool read_only = false);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Statement Prepare(std::string_view sql) { return Statement(db_, sql); }
  void Exec(std::string_view sql);
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  sqlite3* handle() { return db_; }

  // Applies migrations[i] for every i at or above the stored schema version, each in its own
  // transaction, and records the new version.
  void Migrate(const std::vector<std::string>& migrations);
  int SchemaVersion();

  // Told of each outermost transaction's duration (seconds) and whether it committed.
  void set_transaction_observer(std::function<void(double, bool)> observer) {
    on_transaction_ = std::move(observer);
  }

 private:
  friend class Transaction;
  sqlite3* db_ = nullptr;
  int tx_depth_ = 0;
  bool tx_failed_ = false;  // an inner transaction ended without committing
  std::function<void(double, bool)> on_transaction_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK unless Commit() was called. Nested inside another
// Transaction on the same connection it joins it: the outermost commits, and an inner one
// left without Commit() makes the outer Commit() fail (DbError) and roll back.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  void Commit();

 private:
  void Observe(bool committed);
  Database& db_;
  bool outer_ = false;
  bool done_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ota::server
