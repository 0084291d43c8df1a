// Runs a parsed template against a context. Semantics follow @huggingface/jinja's
// interpreter (printing, truthiness, filters, tests, scoping), because its output is what
// our renders are checked against. Work is bounded: evaluation depth, steps, value nesting
// and output size, so a template or a message cannot hang or crash the process.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/chat/template_parser.h"
#include "core/common/result.h"

namespace kvmock::chat {

struct RenderLimits {
  int max_depth = 256;               // nested evaluations (macro recursion included)
  long long max_steps = 20'000'000;  // evaluated nodes, loop iterations, produced items
  size_t max_output_bytes = 16u << 20;
};

// "template_error" for raise_exception (its message) and every runtime failure.
Result<std::string> render_template(const NodeList& program, const nlohmann::ordered_json& context,
                                    const RenderLimits& limits = {});

}  // namespace kvmock::chat
