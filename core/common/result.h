// Errors as values. Every decoder of outside bytes returns Result<T>: either the
// decoded value or an Error naming what was wrong. Nothing throws across a module
// boundary, so a malformed frame can never take the process down.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kvmock {

// A failure with a stable, metric-friendly reason ("truncated", "bad_tag", ...) and a
// human-readable message. `reason` must point at a string literal: it is used as a
// Prometheus label value and compared by tests.
struct Error {
  std::string_view reason;
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<T>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<Error>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

inline Error make_error(std::string_view reason, std::string message) {
  return Error{reason, std::move(message)};
}

}  // namespace kvmock
