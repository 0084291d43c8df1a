// The answer to GET/POST of one worker's fault settings (docs/faults.md), shared by the
// worker's own port (/admin/config) and the admin port (/admin/workers/{id}/config), so
// both speak exactly alike: GET answers the settings, POST merges a JSON patch and answers
// the new settings, a bad patch is a 400 (OpenAI error shape, code "bad_setting") whose
// message names the key, any other method a 405.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "transport/http/http_server.h"
#include "transport/http/worker_faults.h"

namespace kvmock {

void answer_admin_config(HttpExchange& exchange, WorkerFaults& faults, std::string_view path,
                         const std::map<std::string, std::string>& headers = {});

// Answers `status` with OpenAI's error JSON (openai_errors.h).
void answer_openai_error(HttpExchange& exchange, int status, std::string_view message,
                         std::string_view code, std::string_view param = {},
                         const std::map<std::string, std::string>& headers = {});

}  // namespace kvmock
