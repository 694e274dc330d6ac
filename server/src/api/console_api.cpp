// The web console's part of the operator API (docs/server.md, "Console"): the fleet overview,
// device search with paging, a device's upgrade history, the rollout preview and the live event
// stream (Server-Sent Events fed by Platform::changes()).
#include <httplib.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>

#include "http_api_internal.hpp"
#include "ota/server/console.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/log.hpp"
#include "route_recorder.hpp"

namespace ota::server {

namespace {

using nlohmann::json;

// A comment line this often keeps proxies (and the client's idle timers) from closing a quiet
// stream; what depends on time alone (online by recent traffic, scheduled tasks) is looked at
// again then too.
constexpr auto kPingInterval = std::chrono::seconds(15);
// Changes closer together than this are sent together.
constexpr auto kCoalesce = std::chrono::milliseconds(250);
constexpr int64_t kMaxPage = 1000;

std::optional<bool> BoolParam(const httplib::Request& req, const char* key) {
  if (!req.has_param(key)) return std::nullopt;
  const std::string v = req.get_param_value(key);
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  throw ApiError(400, std::string(key) + " must be true or false");
}

DeviceFilter FilterOf(const httplib::Request& req) {
  DeviceFilter f;
  f.q = req.get_param_value("q");
  f.product_id = req.get_param_value("product_id");
  f.group = req.get_param_value("group");
  if (req.has_param("version")) f.version = req.get_param_value("version");
  f.online = BoolParam(req, "online");
  if (req.has_param("limit")) {
    f.limit = ApiQueryNumber(req, "limit", 0);
    if (f.limit < 1 || f.limit > kMaxPage) {
      throw ApiError(400, "limit: 1.." + std::to_string(kMaxPage));
    }
  }
  f.offset = ApiQueryNumber(req, "offset", 0);
  if (f.offset < 0) throw ApiError(400, "offset: 0 or more");
  if (f.q.size() > 200) throw ApiError(400, "q: at most 200 characters");
  return f;
}

// A stream's credential asked again (CallerStillAllowed); an error counts as no.
bool StillAllowed(const std::function<bool()>& allowed) {
  try {
    return allowed();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("event stream: ") + e.what());
    return false;
  }
}

// One open event stream: the slot it holds (`release` gives it back), what it sent, when it
// last wrote and looked.
struct Stream {
  Stream(std::function<void()> release, bool devices, int64_t task)
      : release_(std::move(release)), events(devices, task) {}
  ~Stream() { release_(); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  std::function<void()> release_;
  EventStream events;
  bool started = false;
  uint64_t seq = 0;
  std::chrono::steady_clock::time_point wrote, looked;
};

}  // namespace

void HttpApi::ConsoleRoutes() {
  RouteRecorder s(*server_, routes_, "api");
  Platform& p = platform_;

  s.Get("/api/v1/overview", ApiGuard(p, [&p](const httplib::Request&, httplib::Response& res) {
          ApiReply(res, 200, Overview(p.db(), std::time(nullptr)));
        }));

  // Still the whole list when no limit is given (as before the filters); the count before
  // paging is in X-Total-Count either way.
  s.Get("/api/v1/devices", ApiGuard(p, [&p](const httplib::Request& req, httplib::Response& res) {
          int64_t total = 0;
          // Written device by device: a JSON tree of the whole fleet (100,000 devices) would
          // take several times the text's memory, under the platform lock.
          std::string out = "[";
          for (const Device& d : p.registry().FindDevices(FilterOf(req), &total)) {
            if (out.size() > 1) out += ',';
            out += DeviceJson(d).dump(-1, ' ', false, json::error_handler_t::replace);
          }
          out += ']';
          res.set_header("X-Total-Count", std::to_string(total));
          res.status = 200;
          res.set_content(out, "application/json");
        }));

  s.Get(R"(/api/v1/devices/([^/]+)/history)",
        ApiGuard(p, [&p](const httplib::Request& req, httplib::Response& res) {
          ApiReply(res, 200, DeviceHistory(p.db(), req.matches[1]));
        }));

  if (tasks_ != nullptr) {
    // Write scope (it is a POST), not audited (Audited in http_api.cpp): it changes nothing.
    s.Post("/api/v1/tasks/preview",
           ApiGuard(p, [t = tasks_](const httplib::Request& req, httplib::Response& res) {
             ApiReply(res, 200, t->Preview(TaskSpecOf(req), std::time(nullptr)));
           }));
  }

  // Server-Sent Events: the guard checks the token and sets the stream up; the stream itself
  // runs after, on this worker, without the platform lock, reading through the worker's
  // read-only connection.
  s.Get("/api/v1/events",
        ApiGuard(p, [this, &p](const httplib::Request& req, httplib::Response& res) {
          const bool devices = BoolParam(req, "devices").value_or(false);
          const int64_t task = ApiQueryNumber(req, "task", 0);
          if (task < 0) throw ApiError(400, "task: a task id");
          if (task > 0) {
            Statement st = p.db().Prepare("SELECT 1 FROM tasks WHERE task_id = ?");
            if (!st.Bind(1, task).Step()) throw ApiError(404, "no task " + std::to_string(task));
          }
          const std::string caller = ApiCallerKey(p, req);
          {
            const std::lock_guard<std::mutex> guard(event_streams_mutex_);
            if (event_streams_ >= kMaxEventStreams) {
              res.set_header("Retry-After", "5");
              throw ApiError(503, "too many event streams open (" +
                                      std::to_string(kMaxEventStreams) + "); try again later");
            }
            int& mine = event_streams_by_caller_[caller];
            if (mine >= kMaxEventStreamsPerCaller) {
              res.set_header("Retry-After", "5");
              throw ApiError(429, "this token or user has " +
                                      std::to_string(kMaxEventStreamsPerCaller) +
                                      " event streams open already: close one");
            }
            ++mine;
            ++event_streams_;
          }
          const auto release = [this, caller] {
            const std::lock_guard<std::mutex> guard(event_streams_mutex_);
            --event_streams_;
            const auto it = event_streams_by_caller_.find(caller);
            if (it != event_streams_by_caller_.end() && --it->second <= 0) {
              event_streams_by_caller_.erase(it);
            }
          };
          auto stream = std::make_shared<Stream>(release, devices, task);
          // Its token or session is asked about again each time it wakes (a change, at the
          // latest the ping): revoked, signed out, disabled or deleted, the stream ends. Those
          // changes are audited, so they wake it at once.
          std::function<bool()> allowed = CallerStillAllowed(p, req);
          // Cache-Control: no-store, as every /api answer (HttpApi's pre-routing handler).
          res.set_header("X-Accel-Buffering", "no");  // nginx: pass each event on at once
          res.set_chunked_content_provider(
              "text/event-stream", [this, &p, stream, allowed](size_t, httplib::DataSink& sink) {
                ChangeFeed& feed = p.changes();
                Stream& st = *stream;
                using Clock = std::chrono::steady_clock;
                if (st.started) {
                  // Until something changes, or it is time for a ping.
                  const uint64_t seq =
                      feed.WaitUntil(st.seq, st.wrote + kPingInterval, stopping_streams_);
                  if (stopping_streams_ || !sink.is_writable()) return false;
                  if (seq == st.seq) {
                    if (!sink.write(": ping\n\n", 8)) return false;
                    st.wrote = Clock::now();
                  } else if (!feed.PauseUntil(st.looked + kCoalesce, stopping_streams_)) {
                    return false;
                  }
                }
                const bool again = st.started;
                st.started = true;
                st.seq = feed.seq();  // before reading: a change from here on wakes it again
                st.looked = Clock::now();
                // After taking seq: a revocation from here on wakes the stream once more.
                if (again && !StillAllowed(allowed)) return false;
                try {
                  Database& db = p.ReadDb();
                  // Task summaries through this connection (Get reads only).
                  UpgradeTasks reader(db, p.registry(), p.packages(), p.outbox(), nullptr);
                  const std::string text =
                      st.events.Next(db, std::time(nullptr),
                                     [&reader](int64_t id) { return reader.Get(id, false); });
                  if (!text.empty()) {
                    if (!sink.write(text.data(), text.size())) return false;
                    st.wrote = Clock::now();
                  }
                } catch (const std::exception& e) {
                  Log(LogLevel::kError, std::string("event stream: ") + e.what());
                  return false;
                }
                return !stopping_streams_;
              });
        }));
}

}  // namespace ota::server
