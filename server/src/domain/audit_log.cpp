#include "ota/server/audit_log.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "ota/server/hex.hpp"
#include "ota/server/registry.hpp"

namespace ota::server {

namespace {

using nlohmann::json;

constexpr size_t kMaxString = 64;     // longer strings keep their first 48 bytes
constexpr size_t kMaxItems = 10;      // array elements, object members kept 3x that
constexpr int kMaxDepth = 4;          // deeper values become "..."
constexpr size_t kMaxSummary = 2048;  // bytes of the whole summary as text

// Names whose values are never stored, whatever the route: device secrets, passwords, tokens,
// private keys, and whatever a command's paras call similar.
bool SecretName(const std::string& name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* word : {"secret", "password", "passwd", "pwd", "token", "private", "credential",
                           "apikey", "api_key", "authorization"}) {
    if (n.find(word) != std::string::npos) return true;
  }
  return false;
}

json Cut(const json& v, int depth) {
  if (depth >= kMaxDepth && (v.is_object() || v.is_array())) return "...";
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() <= kMaxString) return s;
    return s.substr(0, 48) + "...(" + std::to_string(s.size()) + " bytes)";
  }
  if (v.is_array()) {
    json out = json::array();
    for (size_t i = 0; i < v.size() && i < kMaxItems; ++i)
      out.push_back(Cut(v[i], depth + 1));
    if (v.size() > kMaxItems) out.push_back("...(" + std::to_string(v.size()) + " items)");
    return out;
  }
  if (v.is_object()) {
    json out = json::object();
    size_t n = 0;
    for (const auto& [k, item] : v.items()) {
      if (++n > 3 * kMaxItems) {
        out["..."] = std::to_string(v.size()) + " members";
        break;
      }
      out[k] = SecretName(k) ? json("[redacted]") : Cut(item, depth + 1);
    }
    return out;
  }
  return v;
}

}  // namespace

std::string AuditActor(const std::string& bearer_token) {
  if (bearer_token.empty()) return "anonymous";
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bearer_token.data(), bearer_token.size(), d, &n, EVP_sha256(), nullptr);
  // 48 bits: tells tokens apart in a log, and is no help in guessing one.
  return "token:" + ToHex(std::span<const uint8_t>(d, n)).substr(0, 12);
}

json AuditSummary(const std::string& body, const std::multimap<std::string, std::string>& query) {
  json out = json::object();
  if (!body.empty()) {
    json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      out["body_bytes"] = body.size();  // a package, or not JSON: only its size
    } else {
      out["body"] = Cut(parsed, 0);
    }
  }
  if (!query.empty()) {
    json q = json::object();
    for (const auto& [k, v] : query)
      q[k] = v;
    out["query"] = Cut(q, 0);
  }
  if (out.dump(-1, ' ', false, json::error_handler_t::replace).size() > kMaxSummary) {
    return {{"truncated", true}, {"body_bytes", body.size()}};
  }
  return out;
}

json AuditObjectIds(const std::string& route, const std::string& path) {
  json out = json::object();
  size_t r = 0, p = 0;
  while (r < route.size() && p < path.size()) {
    const size_t r_end = std::min(route.find('/', r), route.size());
    const size_t p_end = std::min(path.find('/', p), path.size());
    const std::string name = route.substr(r, r_end - r);
    if (name.size() > 2 && name.front() == '{' && name.back() == '}') {
      out[name.substr(1, name.size() - 2)] = path.substr(p, std::min<size_t>(p_end - p, 200));
    }
    r = r_end + 1;
    p = p_end + 1;
  }
  return out;
}

void RecordAudit(Database& db, const AuditEntry& e, int64_t keep) {
  const auto text = [](const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  db.Prepare(
        "INSERT INTO audit_log (at, actor, method, route, object_ids, summary, remote_addr, "
        "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .Bind(1, e.at)
      .Bind(2, e.actor)
      .Bind(3, e.method)
      .Bind(4, e.route)
      .Bind(5, text(e.object_ids))
      .Bind(6, text(e.summary))
      .Bind(7, e.remote_addr)
      .Bind(8, e.status)
      .Run();
  // Bounded: a flood of refused requests pushes out the oldest rows, never fills the disk.
  db.Prepare("DELETE FROM audit_log WHERE seq <= ?").Bind(1, db.LastInsertId() - keep).Run();
}

json ListAudit(Database& db, int64_t limit, int64_t offset, const std::string& actor,
               int64_t since) {
  if (limit < 1 || limit > 1000) throw ApiError(400, "limit: 1..1000");
  if (offset < 0) throw ApiError(400, "offset: 0 or more");
  const char* where = " FROM audit_log WHERE (?1 = '' OR actor = ?1) AND at >= ?2";
  Statement count = db.Prepare(std::string("SELECT COUNT(*)") + where);
  count.Bind(1, actor).Bind(2, since);
  const int64_t total = count.Step() ? count.Int(0) : 0;
  Statement st = db.Prepare(
      std::string(
          "SELECT seq, at, actor, method, route, object_ids, summary, remote_addr, status") +
      where + " ORDER BY seq DESC LIMIT ?3 OFFSET ?4");
  st.Bind(1, actor).Bind(2, since).Bind(3, limit).Bind(4, offset);
  json items = json::array();
  while (st.Step()) {
    items.push_back({{"seq", st.Int(0)},
                     {"at", st.Int(1)},
                     {"actor", st.Text(2)},
                     {"method", st.Text(3)},
                     {"route", st.Text(4)},
                     {"object_ids", json::parse(st.Text(5), nullptr, false)},
                     {"summary", json::parse(st.Text(6), nullptr, false)},
                     {"remote_addr", st.Text(7)},
                     {"status", st.Int(8)}});
  }
  return {{"total", total}, {"limit", limit}, {"offset", offset}, {"items", items}};
}

}  // namespace ota::server
