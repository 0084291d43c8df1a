// Where each key's value came from, and the error list of one config load. Every message
// has the shape "LOCATION: KEY: what is wrong", LOCATION being "file:line", "file" (the
// value is a default), "env NAME" or "--set".
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"

namespace kvmock {

struct Origin {
  enum class Kind : uint8_t { kFile, kEnv, kSet };
  Kind kind = Kind::kFile;
  int line = 0;          // kFile: 1-based
  std::string env_name;  // kEnv: the variable
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file_name);

  // Records that `path` ("workers.count", "relays[0].worker_id", "relays[0]") was set.
  void set_origin(const std::string& path, Origin origin);
  // Null if `path` still holds its default.
  const Origin* origin(std::string_view path) const;

  // "LOCATION: KEY: message" with LOCATION from `origin` (null: the file, no line).
  void add(const Origin* origin, std::string_view key, std::string_view reason,
           std::string_view message);
  // As add(), locating `key` by its recorded origin.
  void add_for_key(std::string_view key, std::string_view reason, std::string_view message);
  // "file:line: message" for problems that are not about one key (syntax, root shape).
  void add_in_file(int line, std::string_view reason, std::string_view message);

  bool has_errors() const { return !messages_.empty(); }
  // All messages joined by '\n'; the reason is the first error's. Requires has_errors().
  Error to_error() const;

 private:
  std::string location(const Origin* origin) const;

  std::string file_name_;
  std::map<std::string, Origin, std::less<>> origins_;
  std::string_view first_reason_;
  std::vector<std::string> messages_;
};

}  // namespace kvmock
