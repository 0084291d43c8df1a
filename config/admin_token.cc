#include "config/admin_token.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "core/common/text.h"

namespace kvmock {

Result<std::string> resolve_admin_token(const AdminConfig& admin) {
  if (admin.auth_token_file.empty()) return admin.auth_token;
  std::ifstream in(admin.auth_token_file, std::ios::binary);
  if (!in) {
    return make_error("admin_token", "admin.auth_token_file " + admin.auth_token_file +
                                         ": cannot be read: " + std::strerror(errno));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  const std::string token(trim_ascii_whitespace(contents.str()));
  if (token.empty()) {
    return make_error("admin_token",
                      "admin.auth_token_file " + admin.auth_token_file + ": the file is empty");
  }
  return token;
}

}  // namespace kvmock
