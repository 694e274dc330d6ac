// Registers routes on a cpp-httplib server and records each (method, pattern) as it does, so
// the server can say which routes it serves (HttpApi::Routes; the OpenAPI test compares them
// with the document). The member names are httplib's: `s.Get(pattern, handler)` reads the same.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ota/server/http_api.hpp"

namespace ota::server {

template <class Server>
class RouteRecorder {
 public:
  RouteRecorder(Server& server, std::vector<RouteInfo>& routes, const char* listener)
      : server_(server), routes_(routes), listener_(listener) {}

  template <class Handler>
  RouteRecorder& Get(const std::string& pattern, Handler&& h) {
    routes_.push_back({"GET", pattern, listener_});
    server_.Get(pattern, std::forward<Handler>(h));
    return *this;
  }
  template <class Handler>
  RouteRecorder& Post(const std::string& pattern, Handler&& h) {
    routes_.push_back({"POST", pattern, listener_});
    server_.Post(pattern, std::forward<Handler>(h));
    return *this;
  }
  template <class Handler>
  RouteRecorder& Put(const std::string& pattern, Handler&& h) {
    routes_.push_back({"PUT", pattern, listener_});
    server_.Put(pattern, std::forward<Handler>(h));
    return *this;
  }
  template <class Handler>
  RouteRecorder& Patch(const std::string& pattern, Handler&& h) {
    routes_.push_back({"PATCH", pattern, listener_});
    server_.Patch(pattern, std::forward<Handler>(h));
    return *this;
  }
  template <class Handler>
  RouteRecorder& Delete(const std::string& pattern, Handler&& h) {
    routes_.push_back({"DELETE", pattern, listener_});
    server_.Delete(pattern, std::forward<Handler>(h));
    return *this;
  }

 private:
  Server& server_;
  std::vector<RouteInfo>& routes_;
  std::string listener_;
};

}  // namespace ota::server
