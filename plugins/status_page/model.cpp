// The status page's state model (see model.hpp).
#include "model.hpp"

#include <algorithm>
#include <cmath>

namespace webmon::plugins::status_page {

const char* to_string(State s) noexcept {
  switch (s) {
    case State::up:
      return "up";
    case State::down:
      return "down";
    case State::flapping:
      return "flapping";
    case State::stale:
      return "stale";
  }
  return "unknown";
}

std::int64_t hour_of(std::int64_t time_us) noexcept {
  return time_us >= 0 ? time_us / kHourMicros : -((-time_us + kHourMicros - 1) / kHourMicros);
}

std::optional<double> uptime(const std::array<Bucket, kBucketCount>& buckets, std::int64_t now_hour,
                             std::int64_t hours) noexcept {
  std::uint64_t checks = 0;
  std::uint64_t failures = 0;
  for (const auto& b : buckets) {
    if (b.hour >= 0 && b.hour <= now_hour && b.hour > now_hour - hours) {
      checks += b.checks;
      failures += b.failures;
    }
  }
  if (checks == 0) {
    return std::nullopt;
  }
  return 100.0 * static_cast<double>(checks - failures) / static_cast<double>(checks);
}

std::string strip_credentials(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t scheme = text.find("://", pos);
    if (scheme == std::string_view::npos) {
      break;
    }
    const std::size_t auth = scheme + 3;
    std::size_t end = auth;
    while (end < text.size() && text[end] != '/' && text[end] != '?' && text[end] != '#' &&
           text[end] != ' ' && text[end] != '\t' && text[end] != '\n' && text[end] != '"' &&
           text[end] != '\'' && text[end] != '<' && text[end] != '>') {
      ++end;
    }
    const std::size_t at = text.substr(auth, end - auth).rfind('@');
    out.append(text.substr(pos, auth - pos));
    if (at != std::string_view::npos) {
      pos = auth + at + 1;  // drop "user:password@"
    } else {
      pos = auth;
    }
    out.append(text.substr(pos, end - pos));
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

void TargetState::push_sample(Sample s, std::size_t capacity) {
  if (capacity == 0) {
    return;
  }
  if (samples.size() != capacity) {
    samples.assign(capacity, Sample{});
    sample_next = 0;
    sample_count = 0;
  }
  samples[sample_next] = s;
  sample_next = static_cast<std::uint32_t>((sample_next + 1) % capacity);
  sample_count = static_cast<std::uint32_t>(std::min<std::size_t>(sample_count + 1, capacity));
}

std::vector<Sample> TargetState::ordered_samples() const {
  std::vector<Sample> out;
  if (samples.empty()) {
    return out;
  }
  out.reserve(sample_count);
  const std::size_t cap = samples.size();
  const std::size_t first = (sample_next + cap - sample_count) % cap;
  for (std::size_t i = 0; i < sample_count; ++i) {
    out.push_back(samples[(first + i) % cap]);
  }
  return out;
}

StatusModel::StatusModel(ModelOptions options) : options_(options) {
  options_.bar_hours = std::clamp<std::size_t>(options_.bar_hours, 1, kBucketCount);
}

namespace {
std::string cut(std::string_view s, std::size_t max) {
  if (s.size() <= max) {
    return std::string(s);
  }
  // Cut at a UTF-8 character boundary.
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0U) == 0x80U) {
    --n;
  }
  return std::string(s.substr(0, n)) + "…";
}
}  // namespace

Applied StatusModel::apply(const Check& c) {
  auto it = targets_.find(c.target);
  Applied result = Applied::applied;
  if (it == targets_.end()) {
    if (targets_.size() >= options_.max_targets) {
      return Applied::too_many_targets;
    }
    it = targets_.emplace(std::string(c.target), TargetState{}).first;
    it->second.name = std::string(c.target);
    it->second.samples.assign(options_.sample_capacity, Sample{});
    result = Applied::new_target;
  }
  TargetState& t = it->second;
  ++t.checks;

  // Hourly bucket (a check more than 7 days older than the bucket's hour is not counted).
  const std::int64_t hour = hour_of(c.time_us);
  if (hour >= 0 && hour <= INT32_MAX) {
    Bucket& b = t.buckets[static_cast<std::size_t>(hour % static_cast<std::int64_t>(kBucketCount))];
    if (b.hour < hour) {
      b = Bucket{static_cast<std::int32_t>(hour), 0, 0};
    }
    if (b.hour == hour) {
      ++b.checks;
      if (!c.success) {
        ++b.failures;
      }
    }
  }

  // Latest state: only a check at least as recent as the last one moves it (Kafka may
  // deliver a target's checks slightly out of order across restarts).
  if (c.time_us >= t.last_time_us) {
    t.last_time_us = c.time_us;
    t.last_success = c.success;
    t.last_status = c.status_code;
    t.last_ms = c.response_time_ms;
    if (!c.url.empty() && c.url != t.url) {
      t.url = strip_credentials(c.url);
    }
    if (c.group != t.group) {
      t.group = std::string(c.group);
    }
    if (c.cert_not_after_us) {
      t.cert_not_after_us = *c.cert_not_after_us;
    }
    t.push_sample(Sample{static_cast<float>(c.response_time_ms), c.success},
                  options_.sample_capacity);
  }
  if (!c.success && c.time_us >= t.last_error_time_us) {
    t.last_error_time_us = c.time_us;
    t.last_error = cut(c.error.empty() ? std::string_view("failed") : c.error, 64);
    t.last_error_message = cut(strip_credentials(c.error_message), options_.max_error_chars);
  }
  return result;
}

TargetView StatusModel::make_view(const TargetState& t, std::int64_t now_us) const {
  TargetView v;
  v.name = t.name;
  v.url = t.url;
  v.group = t.group;
  v.last_time_us = t.last_time_us;
  v.last_status = t.last_status;
  v.last_ms = t.last_ms;
  const std::int64_t now_hour = hour_of(now_us);
  v.uptime_24h = uptime(t.buckets, now_hour, 24);
  v.uptime_7d = uptime(t.buckets, now_hour, static_cast<std::int64_t>(kBucketCount));
  v.samples = t.ordered_samples();
  const auto bar_hours = static_cast<std::int64_t>(options_.bar_hours);
  v.bar_start_hour = now_hour - bar_hours + 1;
  v.bar.assign(options_.bar_hours, std::nullopt);
  for (const auto& b : t.buckets) {
    if (b.hour >= v.bar_start_hour && b.hour <= now_hour && b.checks > 0) {
      v.bar[static_cast<std::size_t>(b.hour - v.bar_start_hour)] =
          100.0 * static_cast<double>(b.checks - b.failures) / static_cast<double>(b.checks);
    }
  }
  v.last_error_time_us = t.last_error_time_us;
  v.last_error = t.last_error;
  v.last_error_message = t.last_error_message;
  if (t.cert_not_after_us != 0) {
    const std::int64_t left = t.cert_not_after_us - now_us;
    v.cert_days_left = left >= 0 ? left / kDayMicros : -((-left + kDayMicros - 1) / kDayMicros);
  }
  int transitions = 0;
  for (std::size_t i = 1; i < v.samples.size(); ++i) {
    transitions += v.samples[i].ok != v.samples[i - 1].ok ? 1 : 0;
  }
  if (now_us - t.last_time_us > options_.stale_after_us) {
    v.state = State::stale;
  } else if (transitions >= options_.flap_transitions) {
    v.state = State::flapping;
  } else {
    v.state = t.last_success ? State::up : State::down;
  }
  return v;
}

std::vector<TargetView> StatusModel::view(std::int64_t now_us) const {
  std::vector<TargetView> out;
  out.reserve(targets_.size());
  for (const auto& [name, t] : targets_) {
    out.push_back(make_view(t, now_us));
  }
  return out;
}

std::vector<const TargetState*> StatusModel::states() const {
  std::vector<const TargetState*> out;
  out.reserve(targets_.size());
  for (const auto& [name, t] : targets_) {
    out.push_back(&t);
  }
  return out;
}

void StatusModel::restore(TargetState state) {
  if (targets_.size() >= options_.max_targets && targets_.find(state.name) == targets_.end()) {
    return;
  }
  // Re-pack the samples into a ring of this model's capacity (the newest ones win).
  std::vector<Sample> ordered = state.ordered_samples();
  state.samples.assign(options_.sample_capacity, Sample{});
  state.sample_next = 0;
  state.sample_count = 0;
  const std::size_t skip =
      ordered.size() > options_.sample_capacity ? ordered.size() - options_.sample_capacity : 0;
  for (std::size_t i = skip; i < ordered.size(); ++i) {
    state.push_sample(ordered[i], options_.sample_capacity);
  }
  std::string key = state.name;
  targets_.insert_or_assign(std::move(key), std::move(state));
}

}  // namespace webmon::plugins::status_page
