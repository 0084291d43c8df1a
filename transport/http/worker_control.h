// What the admin port may do to the mock workers of the process (docs/faults.md, admin
// port): find them by id, read and change their fault settings, crash and restart them.
// The daemon's WorkerFleet implements it; AdminEndpoints only decodes requests into calls.
#pragma once

#include <cstdint>
#include <vector>

#include "core/common/result.h"
#include "transport/http/worker_faults.h"

namespace kvmock {

struct WorkerStatus {
  uint64_t worker_id = 0;  // with Dynamo discovery, the instance id of its current life
  bool running = false;    // false from a crash until the restart
  uint16_t http_port = 0;  // 0: no HTTP port (workers.http_base_port 0)
};

class WorkerControl {
 public:
  virtual ~WorkerControl() = default;

  // Every worker, crashed ones included, in fleet order.
  virtual std::vector<WorkerStatus> workers() const = 0;
  // The fault settings of the running worker `worker_id`; null when no worker has that id
  // or it is crashed. The object stays valid for the life of the control.
  virtual WorkerFaults* faults(uint64_t worker_id) = 0;
  // Errors: "not_found" (no worker has that id), "conflict" (already crashed).
  virtual Result<WorkerStatus> crash(uint64_t worker_id) = 0;
  // A crashed worker comes back; a running one is crashed first. The answer is the new
  // status (a new id with Dynamo discovery). Errors: "not_found", or why it could not start.
  virtual Result<WorkerStatus> restart(uint64_t worker_id) = 0;
};

}  // namespace kvmock
