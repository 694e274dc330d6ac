#include "cli_client.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "ota/host/hex.hpp"

namespace ota::server::cli {

namespace {

using nlohmann::json;

std::string ReadFirstLine(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::optional<std::string> ReadAll(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot read";
    return std::nullopt;
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void ClientOptions::Add(CLI::App* app) {
  app->add_option("--url", url, "the platform's HTTPS base URL");
  app->add_option("--data", data, "data directory: the token and CA are taken from it");
  app->add_option("--token-file", token_file, "operator token file (default DATA/admin.token)");
  app->add_option("--ca", ca, "CA certificate (default DATA/tls/ca.pem)");
}

int Client::Fail(int code, const std::string& message) const {
  std::fprintf(stderr, "ota-server: %s\n", message.c_str());
  return code;
}

std::unique_ptr<httplib::Client> Client::Connect(std::string* error) const {
  const std::string ca = options_.ca.empty() ? options_.data + "/tls/ca.pem" : options_.ca;
  const std::string token_file =
      options_.token_file.empty() ? options_.data + "/admin.token" : options_.token_file;
  const std::string token = ReadFirstLine(token_file);
  if (token.empty()) {
    *error = "no operator token in " + token_file;
    return nullptr;
  }
  auto c = std::make_unique<httplib::Client>(options_.url);
  if (!c->is_valid()) {
    *error = "bad --url " + options_.url;
    return nullptr;
  }
  c->set_ca_cert_path(ca.c_str());
  c->enable_server_certificate_verification(true);
  c->set_bearer_token_auth(token.c_str());
  c->set_connection_timeout(5);
  c->set_read_timeout(60);
  return c;
}

int Client::Call(const std::string& method, const std::string& path, const std::string& body,
                 const std::string& content_type, json* out) const {
  std::string error;
  auto c = Connect(&error);
  if (!c) return Fail(kExitInput, error);
  httplib::Result r = method == "GET"      ? c->Get(path.c_str())
                      : method == "PATCH"  ? c->Patch(path.c_str(), body, content_type.c_str())
                      : method == "PUT"    ? c->Put(path.c_str(), body, content_type.c_str())
                      : method == "DELETE" ? c->Delete(path.c_str())
                                           : c->Post(path.c_str(), body, content_type.c_str());
  if (!r) {
    return Fail(kExitInput, "cannot reach " + options_.url + ": " + httplib::to_string(r.error()));
  }
  json j;
  try {
    j = json::parse(r->body);
  } catch (const json::parse_error&) {
    return Fail(kExitInput, "the server answered " + std::to_string(r->status) + " without JSON");
  }
  if (r->status >= 400) {
    return Fail(kExitRefused, std::to_string(r->status) + ": " + j.value("error", r->body));
  }
  if (out != nullptr) *out = j;
  return kExitOk;
}

int Client::Print(const std::string& method, const std::string& path, const json& body) const {
  json out;
  const int rc = Call(method, path, body.is_null() ? "" : body.dump(), "application/json", &out);
  if (rc == kExitOk) std::printf("%s\n", out.dump(2).c_str());
  return rc;
}

int Client::Upload(const std::string& product, const std::string& file,
                   const std::string& software_version, const std::string& signature_file) const {
  std::string error;
  const std::optional<std::string> bytes = ReadAll(file, &error);
  if (!bytes) return Fail(kExitInput, error);
  const std::string name = std::filesystem::path(file).filename().string();
  std::string query = "?file_name=" + httplib::detail::encode_query_param(name);
  if (!software_version.empty()) {
    const std::optional<std::string> sig = ReadAll(signature_file, &error);
    if (!sig) return Fail(kExitInput, error);
    const std::string hex = ota::host::ToHex(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(sig->data()), sig->size()));
    query += "&category=software&version=" + httplib::detail::encode_query_param(software_version) +
             "&signature=" + hex;
  }
  json out;
  const int rc = Call("POST", "/api/v1/products/" + product + "/packages" + query, *bytes,
                      "application/octet-stream", &out);
  if (rc == kExitOk) std::printf("%s\n", out.dump(2).c_str());
  return rc;
}

int Client::DeviceRequest(const std::string& method, const std::string& path,
                          const json& body) const {
  json out;
  const int rc = Call(method, path, body.dump(), "application/json", &out);
  if (rc != kExitOk) return rc;
  std::printf("%s\n", out.dump(2).c_str());
  const std::string status = out.value("status", "");
  if (status == "succeeded" || status == "pending" || status == "delivered") return kExitOk;
  return Fail(kExitRefused,
              out.value("kind", "request") + " " + out.value("request_id", "") + ": " + status);
}

int Client::WaitTask(int64_t task, int timeout_s) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string last;
  for (;;) {
    json t;
    const int rc = Call("GET", "/api/v1/tasks/" + std::to_string(task), "", "", &t);
    if (rc != kExitOk) return rc;
    const std::string status = t["status"];
    const std::string state = t.value("state", "");
    std::string line = "task " + std::to_string(task) + ": " + status + " " + t["counts"].dump();
    if (state == "paused") line += " paused: " + t.value("pause_reason", "");
    if (line != last) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      last = line;
    }
    if (status == "Success") return kExitOk;
    if (status == "Fail" || status == "PartialSuccess" || status == "Stopped") {
      return kExitRefused;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail(kExitRefused, "task " + std::to_string(task) + " still " + status + " after " +
                                    std::to_string(timeout_s) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

std::optional<json> ParseWave(const std::string& text, std::string* error) {
  if (text.rfind("group:", 0) == 0 && text.size() > 6) return json{{"group", text.substr(6)}};
  if (text.rfind("devices:", 0) == 0 && text.size() > 8) {
    json ids = json::array();
    std::string rest = text.substr(8);
    for (size_t start = 0; start <= rest.size();) {
      const size_t comma = std::min(rest.find(',', start), rest.size());
      if (comma > start) ids.push_back(rest.substr(start, comma - start));
      start = comma + 1;
    }
    return json{{"devices", ids}};
  }
  if (!text.empty() && text.back() == '%') {
    try {
      size_t used = 0;
      const int pct = std::stoi(text.substr(0, text.size() - 1), &used);
      if (used == text.size() - 1 && pct >= 1 && pct <= 100) return json{{"percent", pct}};
    } catch (const std::exception&) {
    }
  }
  *error = "--wave " + text + ": expected group:NAME, PERCENT% (1-100) or devices:ID,ID";
  return std::nullopt;
}

std::optional<json> ParseJsonArg(const std::string& what, const std::string& text,
                                 std::string* error) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    *error = what + ": not JSON: " + e.what();
    return std::nullopt;
  }
}

std::optional<json> ReadJsonFile(const std::string& path, std::string* error) {
  const std::optional<std::string> text = ReadAll(path, error);
  if (!text) return std::nullopt;
  try {
    return json::parse(*text);
  } catch (const json::parse_error& e) {
    *error = path + ": not JSON: " + e.what();
    return std::nullopt;
  }
}

std::optional<std::string> ReadTextFile(const std::string& path, std::string* error) {
  return ReadAll(path, error);
}

}  // namespace ota::server::cli
