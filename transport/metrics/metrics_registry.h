// Prometheus metrics: counters, gauges and histograms registered once by name + labels
// and updated lock-free from any thread; render() produces the text exposition format
// (version 0.0.4) that /metrics serves.
//
// Registration takes a lock and returns a reference that stays valid for the registry's
// lifetime, so hot paths keep the reference and only touch an atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kvmock {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Snapshot for rendering and tests: cumulative counts per bound, then +Inf.
  std::vector<uint64_t> cumulative_counts() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // The smallest bucket bound below which at least `q` of observations fall (an upper
  // estimate of the quantile, as Prometheus' histogram_quantile would interpolate).
  double quantile_upper_bound(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative, bounds_.size() + 1
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Bucket bounds used by latency histograms, in seconds: 100 µs .. 60 s.
std::vector<double> latency_buckets_seconds();
// vLLM's own bucket bounds (vllm/v1/metrics/loggers.py), so dashboards built for vLLM
// read kvmock's histograms alike: the per-request intervals (queue, prefill, decode,
// inference: 0.3 s .. 7680 s), time per output token (0.01 s .. 80 s), and token counts
// (build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to `max_value`; at least {1}).
std::vector<double> vllm_request_latency_buckets();
std::vector<double> vllm_time_per_output_token_buckets();
std::vector<double> vllm_1_2_5_buckets(uint64_t max_value);

class MetricsRegistry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  Counter& counter(const std::string& name, const std::string& help, MetricLabels labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, MetricLabels labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, MetricLabels labels,
                       std::vector<double> upper_bounds);

  // A gauge whose value is read at render time (queue depths, connection state).
  void gauge_callback(const std::string& name, const std::string& help, MetricLabels labels,
                      std::function<double()> read);
  // The same, with labels also read at render time (all labels written sorted by name): an
  // info gauge
  // whose label values change (vLLM's lora_requests_info names the adapters in use). The
  // series is found by `labels` alone, so render_matching filters on those.
  void gauge_callback(const std::string& name, const std::string& help, MetricLabels labels,
                      std::function<double()> read, std::function<MetricLabels()> read_labels);
  // A counter kept elsewhere (an atomic owned by a component), read at render time.
  void counter_callback(const std::string& name, const std::string& help, MetricLabels labels,
                        std::function<double()> read);

  // Drops every series read by a callback whose labels include `key`=`value` (the gauges of
  // a worker id that is gone for good: a restarted Dynamo worker's old instance id), so no
  // callback into its owner runs again. Counters and histograms stay: references to them
  // must stay valid.
  void remove_callbacks(const std::string& key, const std::string& value);

  // Every series, for kvmockd's own /metrics. Colons in family names are written as '_':
  // Prometheus reserves them for recording rules and `promtool check metrics` rejects them,
  // so the mock workers' vLLM families appear here as vllm_num_requests_running etc.
  std::string render() const;
  // Only the series carrying label `key`=`value`, names verbatim: a mock worker's own
  // /metrics impersonates vLLM, and routers scrape vLLM's exact names
  // (vllm:num_requests_waiting, vllm:kv_cache_usage_perc).
  std::string render_matching(const std::string& key, const std::string& value) const;

 private:
  struct Series {
    MetricLabels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> read;
    std::function<MetricLabels()> read_labels;  // more labels, read at render time
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<Series> series;
    // hash of the labels -> index in `series`. Registration looks a series up before
    // adding one; a scan made starting 3,000 workers quadratic (36-58 s). Keyed by a hash
    // (the labels are compared on a match), the index costs about 40 bytes a series.
    std::unordered_multimap<uint64_t, size_t> index;
  };

  Family& family(const std::string& name, const std::string& help, Type type);
  std::string render_filtered(const std::pair<std::string, std::string>* filter,
                              bool colons_as_underscores) const;
  void add_callback(const std::string& name, const std::string& help, Type type,
                    MetricLabels labels, std::function<double()> read,
                    std::function<MetricLabels()> read_labels = nullptr);
  Series* find(Family& family, const MetricLabels& labels);
  static void add_series(Family& family, Series series);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
};

}  // namespace kvmock
