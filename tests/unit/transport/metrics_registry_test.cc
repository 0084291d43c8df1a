#include "transport/metrics/metrics_registry.h"

#include <gtest/gtest.h>

namespace kvmock {
namespace {

TEST(MetricsRegistry, CountersWithTheSameNameAndLabelsAreOneSeries) {
  MetricsRegistry registry;
  Counter& a = registry.counter("kvmock_frames_total", "Frames.", {{"relay", "r1"}});
  Counter& b = registry.counter("kvmock_frames_total", "Frames.", {{"relay", "r1"}});
  Counter& c = registry.counter("kvmock_frames_total", "Frames.", {{"relay", "r2"}});
  a.inc();
  b.inc(2);
  c.inc();
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(a.value(), 3u);
  const std::string text = registry.render();
  EXPECT_NE(text.find("# HELP kvmock_frames_total Frames.\n# TYPE kvmock_frames_total counter\n"),
            std::string::npos);
  EXPECT_NE(text.find("kvmock_frames_total{relay=\"r1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("kvmock_frames_total{relay=\"r2\"} 1\n"), std::string::npos);
  // HELP/TYPE appear once per family.
  EXPECT_EQ(text.find("# TYPE kvmock_frames_total"), text.rfind("# TYPE kvmock_frames_total"));
}

TEST(MetricsRegistry, LabelValuesAreEscaped) {
  MetricsRegistry registry;
  registry.gauge("g", "A gauge.", {{"path", "a\"b\\c\nd"}}).set(1.5);
  EXPECT_NE(registry.render().find("g{path=\"a\\\"b\\\\c\\nd\"} 1.5\n"), std::string::npos);
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  Histogram& h = registry.histogram("lat_seconds", "Latency.", {}, {0.001, 0.01, 0.1});
  h.observe(0.0005);
  h.observe(0.005);
  h.observe(0.005);
  h.observe(5);
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{1, 3, 3, 4}));
  const std::string text = registry.render();
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.01\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum 5.0105\n"), std::string::npos);
  EXPECT_EQ(h.quantile_upper_bound(0.5), 0.01);
}

TEST(MetricsRegistry, CallbackGaugesAreReadAtRenderTime) {
  MetricsRegistry registry;
  double depth = 3;
  registry.gauge_callback("depth", "Depth.", {}, [&depth] { return depth; });
  EXPECT_NE(registry.render().find("depth 3\n"), std::string::npos);
  depth = 7;
  EXPECT_NE(registry.render().find("depth 7\n"), std::string::npos);
}

TEST(MetricsRegistry, CallbackLabelsAreReadAtRenderTimeAndTheFilterUsesTheFixedOnes) {
  MetricsRegistry registry;
  std::string running;
  registry.gauge_callback(
      "vllm:lora_requests_info", "Running stats on lora requests.", {{"worker_id", "7"}},
      [] { return 2.5; },
      [&running] {
        return MetricLabels{{"running_lora_adapters", running}};
      });
  const std::string idle = registry.render_matching("worker_id", "7");
  EXPECT_NE(idle.find("vllm:lora_requests_info{running_lora_adapters=\"\",worker_id=\"7\"} 2.5"),
            std::string::npos)
      << idle;
  running = "sql,chat";
  const std::string busy = registry.render_matching("worker_id", "7");
  EXPECT_NE(busy.find("running_lora_adapters=\"sql,chat\",worker_id=\"7\"} 2.5"), std::string::npos)
      << busy;
  EXPECT_EQ(busy.find("running_lora_adapters=\"\""), std::string::npos) << busy;
  EXPECT_EQ(registry.render_matching("worker_id", "8"), "");
}

TEST(MetricsRegistry, TheFullRenderWritesColonsAsUnderscoresAndTheFilteredOneKeepsThem) {
  MetricsRegistry registry;
  registry.gauge("vllm:num_requests_running", "Running.", {{"worker_id", "7"}}).set(2);
  registry.histogram("vllm:e2e_request_latency_seconds", "E2E.", {{"worker_id", "7"}}, {1.0})
      .observe(0.5);
  const std::string full = registry.render();
  EXPECT_EQ(full.find(':'), std::string::npos) << full;
  EXPECT_NE(full.find("# TYPE vllm_num_requests_running gauge\n"
                      "vllm_num_requests_running{worker_id=\"7\"} 2\n"),
            std::string::npos)
      << full;
  EXPECT_NE(full.find("vllm_e2e_request_latency_seconds_count{worker_id=\"7\"} 1\n"),
            std::string::npos);
  const std::string worker = registry.render_matching("worker_id", "7");
  EXPECT_NE(worker.find("# HELP vllm:num_requests_running Running.\n"), std::string::npos);
  EXPECT_NE(worker.find("vllm:e2e_request_latency_seconds_bucket{worker_id=\"7\",le=\"1\"} 1\n"),
            std::string::npos)
      << worker;
}

TEST(MetricsRegistry, RemovedCallbacksAreNeitherReadNorRenderedAndCountersStay) {
  MetricsRegistry metrics;
  int reads_of_gone = 0;
  metrics.gauge_callback("g", "A gauge.", {{"worker_id", "1"}}, [&] {
    ++reads_of_gone;
    return 1.0;
  });
  metrics.gauge_callback("g", "A gauge.", {{"worker_id", "2"}}, [] { return 2.0; });
  metrics.gauge_callback("only_gone", "Only of worker 1.", {{"worker_id", "1"}},
                         [] { return 3.0; });
  Counter& kept = metrics.counter("c_total", "A counter.", {{"worker_id", "1"}});
  kept.inc();
  metrics.remove_callbacks("worker_id", "1");
  const std::string text = metrics.render();
  EXPECT_EQ(reads_of_gone, 0);
  EXPECT_EQ(text.find("g{worker_id=\"1\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("g{worker_id=\"2\"} 2"), std::string::npos) << text;
  EXPECT_EQ(text.find("only_gone"), std::string::npos) << "no family without series" << text;
  EXPECT_NE(text.find("c_total{worker_id=\"1\"} 1"), std::string::npos) << text;
  kept.inc();  // the reference is still good
  EXPECT_EQ(kept.value(), 2u);
}

TEST(MetricsRegistry, SeriesLeftAfterARemovalAreStillFoundByTheirLabels) {
  MetricsRegistry metrics;
  // The callback comes first, so removing it moves the series behind it.
  metrics.counter_callback("f_total", "A family.", {{"worker_id", "1"}}, [] { return 5.0; });
  Counter& second = metrics.counter("f_total", "A family.", {{"worker_id", "2"}});
  Counter& third = metrics.counter("f_total", "A family.", {{"worker_id", "3"}});
  metrics.remove_callbacks("worker_id", "1");
  EXPECT_EQ(&metrics.counter("f_total", "A family.", {{"worker_id", "2"}}), &second);
  EXPECT_EQ(&metrics.counter("f_total", "A family.", {{"worker_id", "3"}}), &third);
  // A callback registered again under the removed labels is one new series.
  metrics.counter_callback("f_total", "A family.", {{"worker_id", "1"}}, [] { return 6.0; });
  metrics.counter_callback("f_total", "A family.", {{"worker_id", "1"}}, [] { return 7.0; });
  const std::string text = metrics.render();
  EXPECT_NE(text.find("f_total{worker_id=\"1\"} 7\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("f_total{worker_id=\"1\"} 6"), std::string::npos) << text;
}

TEST(MetricsRegistry, ManySeriesOfOneFamilyAreEachFoundAgain) {
  MetricsRegistry metrics;
  std::vector<Counter*> counters;
  for (int i = 0; i < 5000; ++i) {
    counters.push_back(&metrics.counter("many_total", "Many.", {{"worker_id", std::to_string(i)}}));
  }
  for (int i = 0; i < 5000; i += 499) {
    EXPECT_EQ(&metrics.counter("many_total", "Many.", {{"worker_id", std::to_string(i)}}),
              counters[static_cast<size_t>(i)]);
  }
}

}  // namespace
}  // namespace kvmock
