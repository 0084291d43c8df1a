// Names the calling thread as `top -H`, perf and gdb show it ("kvmock-relay" rather than
// a dozen threads all called "kvmockd"). Linux keeps 15 characters; the rest is cut.
#pragma once

#include <pthread.h>

#include <string>

namespace kvmock {

inline void name_thread(pthread_t thread, const std::string& name) {
  (void)pthread_setname_np(thread, name.substr(0, 15).c_str());
}

inline void name_this_thread(const std::string& name) { name_thread(pthread_self(), name); }

}  // namespace kvmock
