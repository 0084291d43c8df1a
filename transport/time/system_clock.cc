#include "transport/time/system_clock.h"

namespace kvmock {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace kvmock
