// A RouterEventSink that records what it is given, for tests of the event producers
// (simulated engines, relays). Thread-safe: producers may run on other threads.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "core/pipeline/router_event_sink.h"

namespace kvmock::test {

class CapturingEventSink final : public RouterEventSink {
 public:
  struct Published {
    WorkerId worker = 0;
    DpRank rank = 0;
    std::vector<RouterEvent> events;
  };

  size_t publish(WorkerId worker, DpRank rank, std::vector<RouterEvent> events) override {
    std::lock_guard lock(mutex_);
    const size_t count = events.size();
    int64_t& blocks = blocks_[{worker, rank}];
    for (const RouterEvent& e : events) {
      if (const auto* store = std::get_if<StoreData>(&e.event.data)) {
        blocks += static_cast<int64_t>(store->blocks.size());
      } else if (const auto* remove = std::get_if<RemoveData>(&e.event.data)) {
        blocks -= static_cast<int64_t>(remove->block_hashes.size());
      } else {
        blocks = 0;
      }
    }
    published_.push_back(Published{worker, rank, std::move(events)});
    return count;
  }
  void publish_cleared(WorkerId worker, DpRank rank) override {
    std::lock_guard lock(mutex_);
    cleared_.push_back(Published{worker, rank, {}});
    blocks_[{worker, rank}] = 0;
  }
  // Blocks stored and not removed since the last clear, as the events tell.
  size_t block_count(WorkerId worker, DpRank rank) override {
    std::lock_guard lock(mutex_);
    const auto it = blocks_.find({worker, rank});
    return it == blocks_.end() || it->second < 0 ? 0 : static_cast<size_t>(it->second);
  }
  void update_load(const ActiveLoad& load) override {
    std::lock_guard lock(mutex_);
    loads_.push_back(load);
  }
  bool outbox_full() const override { return outbox_full_.load(); }
  // Makes the sink report a full outbox (as the pipeline does while it holds events).
  void set_outbox_full(bool full) { outbox_full_ = full; }

  std::vector<Published> published() const {
    std::lock_guard lock(mutex_);
    return published_;
  }
  // Every event published, in order, over all channels.
  std::vector<RouterEvent> events() const {
    std::lock_guard lock(mutex_);
    std::vector<RouterEvent> all;
    for (const Published& p : published_) all.insert(all.end(), p.events.begin(), p.events.end());
    return all;
  }
  std::vector<Published> cleared() const {
    std::lock_guard lock(mutex_);
    return cleared_;
  }
  std::vector<ActiveLoad> loads() const {
    std::lock_guard lock(mutex_);
    return loads_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Published> published_;
  std::vector<Published> cleared_;
  std::vector<ActiveLoad> loads_;
  std::map<std::pair<WorkerId, DpRank>, int64_t> blocks_;
  std::atomic<bool> outbox_full_{false};
};

}  // namespace kvmock::test
