#include "transport/metrics/metrics_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace kvmock {
namespace {

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[32];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
    out.append(buffer, ec == std::errc() ? end : buffer);
  }
}

void append_escaped(std::string& out, std::string_view text, bool quote_too) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote_too && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_labels(std::string& out, const MetricLabels& labels, const char* extra_key = nullptr,
                   const std::string& extra_value = {}) {
  if (labels.empty() && !extra_key) return;
  out += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += key;
    out += "=\"";
    append_escaped(out, value, true);
    out += '"';
  }
  if (extra_key) {
    if (!first) out += ',';
    out += extra_key;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

const char* type_name(MetricsRegistry::Type type) {
  switch (type) {
    case MetricsRegistry::Type::kCounter:
      return "counter";
    case MetricsRegistry::Type::kGauge:
      return "gauge";
    case MetricsRegistry::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void Gauge::add(double delta) {
  double current = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  const size_t index = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                           bounds_.begin());
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double current = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(current, current + value, std::memory_order_relaxed)) {
  }
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> counts(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

double Histogram::quantile_upper_bound(double q) const {
  const auto counts = cumulative_counts();
  const uint64_t total = counts.back();
  if (total == 0) return 0;
  const double target = q * static_cast<double>(total);
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (static_cast<double>(counts[i]) >= target) return bounds_[i];
  }
  return std::numeric_limits<double>::infinity();
}

std::vector<double> latency_buckets_seconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
          0.25,   0.5,     0.75,   1.0,   2.5,   5.0,   7.5,  10.0, 20.0, 40.0, 60.0};
}

std::vector<double> vllm_request_latency_buckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

std::vector<double> vllm_time_per_output_token_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> vllm_1_2_5_buckets(uint64_t max_value) {
  std::vector<double> bounds;
  for (uint64_t power = 1; bounds.empty() || power <= max_value; power *= 10) {
    for (uint64_t mantissa : {1, 2, 5}) {
      if (mantissa * power > max_value && !bounds.empty()) return bounds;
      bounds.push_back(static_cast<double>(mantissa * power));
    }
    if (power > UINT64_MAX / 100) break;
  }
  return bounds;
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help,
                                                 Type type) {
  auto [it, inserted] = families_.try_emplace(name, Family{type, help, {}, {}});
  if (!inserted && it->second.type != type) {
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

namespace {

uint64_t labels_hash(const MetricLabels& labels) {
  uint64_t hash = 0x9e3779b97f4a7c15ull;
  for (const auto& [key, value] : labels) {
    for (const std::string* part : {&key, &value}) {
      hash = (hash ^ std::hash<std::string>{}(*part)) * 0x100000001b3ull;
    }
  }
  return hash;
}

}  // namespace

MetricsRegistry::Series* MetricsRegistry::find(Family& family, const MetricLabels& labels) {
  // The first series with these labels, as a scan in registration order would find it.
  Series* first = nullptr;
  const auto [begin, end] = family.index.equal_range(labels_hash(labels));
  for (auto it = begin; it != end; ++it) {
    Series& candidate = family.series[it->second];
    if (candidate.labels == labels && (first == nullptr || &candidate < first)) first = &candidate;
  }
  return first;
}

void MetricsRegistry::add_series(Family& family, Series series) {
  family.index.emplace(labels_hash(series.labels), family.series.size());
  family.series.push_back(std::move(series));
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  MetricLabels labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::kCounter);
  if (Series* s = find(f, labels)) return *s->counter;
  Counter& c = counters_.emplace_back();
  add_series(f, Series{std::move(labels), &c, nullptr, nullptr, {}, {}});
  return c;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                              MetricLabels labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::kGauge);
  if (Series* s = find(f, labels); s && s->gauge) return *s->gauge;
  Gauge& g = gauges_.emplace_back();
  add_series(f, Series{std::move(labels), nullptr, &g, nullptr, {}, {}});
  return g;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      MetricLabels labels, std::vector<double> upper_bounds) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, Type::kHistogram);
  if (Series* s = find(f, labels)) return *s->histogram;
  Histogram& h = histograms_.emplace_back(std::move(upper_bounds));
  add_series(f, Series{std::move(labels), nullptr, nullptr, &h, {}, {}});
  return h;
}

void MetricsRegistry::gauge_callback(const std::string& name, const std::string& help,
                                     MetricLabels labels, std::function<double()> read) {
  add_callback(name, help, Type::kGauge, std::move(labels), std::move(read));
}

void MetricsRegistry::gauge_callback(const std::string& name, const std::string& help,
                                     MetricLabels labels, std::function<double()> read,
                                     std::function<MetricLabels()> read_labels) {
  add_callback(name, help, Type::kGauge, std::move(labels), std::move(read),
               std::move(read_labels));
}

void MetricsRegistry::counter_callback(const std::string& name, const std::string& help,
                                       MetricLabels labels, std::function<double()> read) {
  add_callback(name, help, Type::kCounter, std::move(labels), std::move(read));
}

void MetricsRegistry::add_callback(const std::string& name, const std::string& help, Type type,
                                   MetricLabels labels, std::function<double()> read,
                                   std::function<MetricLabels()> read_labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, type);
  if (Series* s = find(f, labels)) {
    s->read = std::move(read);
    s->read_labels = std::move(read_labels);
    return;
  }
  add_series(f, Series{std::move(labels), nullptr, nullptr, nullptr, std::move(read),
                       std::move(read_labels)});
}

void MetricsRegistry::remove_callbacks(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  const std::pair<std::string, std::string> label{key, value};
  for (auto it = families_.begin(); it != families_.end();) {
    Family& family = it->second;
    std::vector<Series>& series = family.series;
    const size_t erased = std::erase_if(series, [&label](const Series& s) {
      return s.read && std::find(s.labels.begin(), s.labels.end(), label) != s.labels.end();
    });
    if (erased > 0) {
      family.index.clear();
      for (size_t i = 0; i < series.size(); ++i) {
        family.index.emplace(labels_hash(series[i].labels), i);
      }
    }
    // A family left empty would render its HELP and TYPE lines alone.
    it = series.empty() ? families_.erase(it) : std::next(it);
  }
}

std::string MetricsRegistry::render() const { return render_filtered(nullptr, true); }

std::string MetricsRegistry::render_matching(const std::string& key,
                                             const std::string& value) const {
  const std::pair<std::string, std::string> filter{key, value};
  return render_filtered(&filter, false);
}

std::string MetricsRegistry::render_filtered(const std::pair<std::string, std::string>* filter,
                                             bool colons_as_underscores) const {
  auto selected = [filter](const Series& s) {
    if (!filter) return true;
    for (const auto& label : s.labels) {
      if (label == *filter) return true;
    }
    return false;
  };
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(4096);
  for (const auto& [registered_name, f] : families_) {
    if (filter && std::none_of(f.series.begin(), f.series.end(), selected)) continue;
    std::string name = registered_name;
    if (colons_as_underscores) std::replace(name.begin(), name.end(), ':', '_');
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const Series& s : f.series) {
      if (!selected(s)) continue;
      if (s.histogram) {
        const auto counts = s.histogram->cumulative_counts();
        const auto& bounds = s.histogram->upper_bounds();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          std::string le;
          if (i == bounds.size()) {
            le = "+Inf";
          } else {
            append_double(le, bounds[i]);
          }
          out += name;
          out += "_bucket";
          append_labels(out, s.labels, "le", le);
          out += ' ';
          out += std::to_string(counts[i]);
          out += '\n';
        }
        out += name;
        out += "_sum";
        append_labels(out, s.labels);
        out += ' ';
        append_double(out, s.histogram->sum());
        out += '\n';
        out += name;
        out += "_count";
        append_labels(out, s.labels);
        out += ' ';
        out += std::to_string(counts.back());
        out += '\n';
        continue;
      }
      out += name;
      if (s.read_labels) {
        MetricLabels labels = s.labels;
        for (auto& label : s.read_labels()) labels.push_back(std::move(label));
        std::sort(labels.begin(), labels.end());
        append_labels(out, labels);
      } else {
        append_labels(out, s.labels);
      }
      out += ' ';
      if (s.counter) {
        out += std::to_string(s.counter->value());
      } else if (s.gauge) {
        append_double(out, s.gauge->value());
      } else if (s.read) {
        append_double(out, s.read());
      }
      out += '\n';
    }
  }
  return out;
}

}  // namespace kvmock
