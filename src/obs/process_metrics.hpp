// The standard process_* metrics of Prometheus client libraries, read from /proc at scrape time.
#pragma once

#include "pylon/metrics.hpp"

namespace pylon::obs {

void register_process_metrics(MetricsRegistry& registry);

}  // namespace pylon::obs
