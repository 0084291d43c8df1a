#include "core/kv/bandwidth_link.h"

#include <algorithm>
#include <cmath>

namespace kvmock {
namespace {

// Slack for floating-point comparisons of instants (ms) and byte counts.
constexpr double kTimeEpsilon = 1e-9;
constexpr double kByteEpsilon = 1e-6;

}  // namespace

BandwidthLink::BandwidthLink(double gbps)
    : bytes_per_ms_(std::isfinite(gbps) && gbps > 0 ? gbps * 1e6 : 0) {}

TransferId BandwidthLink::start(double now_ms, uint64_t bytes) {
  progress_to(now_ms);
  const TransferId id = next_id_++;
  if (bytes == 0 || infinite()) {
    // Nothing to share: it is over the moment it starts.
    done_.push_back({id, last_ms_});
  } else {
    active_.push_back({id, static_cast<double>(bytes)});
  }
  return id;
}

std::vector<BandwidthLink::Completion> BandwidthLink::advance_to(double now_ms) {
  progress_to(now_ms);
  std::vector<Completion> out;
  out.swap(done_);
  return out;
}

void BandwidthLink::progress_to(double now_ms) {
  // NaN or an earlier instant: keep the link's time.
  const double target = now_ms > last_ms_ ? now_ms : last_ms_;
  while (!active_.empty()) {
    const double n = static_cast<double>(active_.size());
    const double share = bytes_per_ms_ / n;
    double min_remaining = active_.front().remaining;
    for (const Active& a : active_) min_remaining = std::min(min_remaining, a.remaining);
    const double finish = last_ms_ + min_remaining / share;
    if (finish > target + kTimeEpsilon) {
      const double moved = (target - last_ms_) * share;
      for (Active& a : active_) a.remaining -= moved;
      break;
    }
    // Everyone moved min_remaining bytes; those at the minimum are done.
    last_ms_ = std::max(last_ms_, finish);
    std::vector<Active> still;
    still.reserve(active_.size());
    for (Active& a : active_) {
      a.remaining -= min_remaining;
      if (a.remaining <= kByteEpsilon) {
        done_.push_back({a.id, last_ms_});
      } else {
        still.push_back(a);
      }
    }
    active_.swap(still);
  }
  last_ms_ = std::max(last_ms_, target);
}

std::optional<double> BandwidthLink::next_deadline_ms() const {
  std::optional<double> best;
  for (const Completion& c : done_) {
    if (!best || c.finish_ms < *best) best = c.finish_ms;
  }
  if (!active_.empty()) {
    double min_remaining = active_.front().remaining;
    for (const Active& a : active_) min_remaining = std::min(min_remaining, a.remaining);
    // Every active transfer moves min_remaining bytes before the first one ends.
    const double finish =
        last_ms_ + min_remaining * static_cast<double>(active_.size()) / bytes_per_ms_;
    if (!best || finish < *best) best = finish;
  }
  return best;
}

}  // namespace kvmock
