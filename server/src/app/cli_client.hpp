// The client side of `ota-server`: the REST operations as subcommands, so a shell script can
// drive the whole walkthrough. Prints the API's JSON; exit codes as the `ota` tool's.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace httplib {
class Client;
}

namespace ota::server::cli {

enum Exit : int { kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitInput = 3 };

struct ClientOptions {
  std::string url = "https://127.0.0.1:8443";
  std::string data = "ota-data";
  std::string token_file;
  std::string ca;
  void Add(CLI::App* app);
};

class Client {
 public:
  explicit Client(ClientOptions options) : options_(std::move(options)) {}
  // GET/POST/PATCH with a JSON body; prints the answer.
  int Print(const std::string& method, const std::string& path, const nlohmann::json& body) const;
  // `software_version` set: a software (SOTA) package signed by `signature_file` (DER).
  int Upload(const std::string& product, const std::string& file,
             const std::string& software_version = "",
             const std::string& signature_file = "") const;
  // A request to a device (docs/server.md, "Requests to devices"): prints the stored request;
  // 0 when it succeeded (or, for a message, is on its way), 1 otherwise (the status on stderr).
  int DeviceRequest(const std::string& method, const std::string& path,
                    const nlohmann::json& body) const;
  // Polls a task until it ends: 0 on Success, 1 otherwise.
  int WaitTask(int64_t task, int timeout_s) const;
  int Call(const std::string& method, const std::string& path, const std::string& body,
           const std::string& content_type, nlohmann::json* out) const;
  int Fail(int code, const std::string& message) const;

 private:
  std::unique_ptr<httplib::Client> Connect(std::string* error) const;
  ClientOptions options_;
};

std::optional<nlohmann::json> ReadJsonFile(const std::string& path, std::string* error);
std::optional<std::string> ReadTextFile(const std::string& path, std::string* error);
// A JSON value given on the command line (`what` names it in the error).
std::optional<nlohmann::json> ParseJsonArg(const std::string& what, const std::string& text,
                                           std::string* error);
// A rollout wave from the command line: "group:NAME", "PERCENT%" or "devices:ID,ID,...".
std::optional<nlohmann::json> ParseWave(const std::string& text, std::string* error);

}  // namespace ota::server::cli
