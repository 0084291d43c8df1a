#pragma once

namespace kvmock {
inline constexpr const char* kVersion = KVMOCK_VERSION;
}  // namespace kvmock
