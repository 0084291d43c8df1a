// The admin bearer token the config asks for, read once at start: the daemon hands the
// string to the admin endpoints (transport/http/admin_endpoints.h), which know nothing of
// the config.
#pragma once

#include <string>

#include "config/config.h"
#include "core/common/result.h"

namespace kvmock {

// admin.auth_token, or the trimmed contents of admin.auth_token_file (an error names the
// file and why it cannot be used), or empty when neither is set.
Result<std::string> resolve_admin_token(const AdminConfig& admin);

}  // namespace kvmock
