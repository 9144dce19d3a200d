// The alert state machine (see engine.hpp).
#include "engine.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <utility>

namespace webmon::plugins::alert {

bool Silence::matches(std::string_view target, const sdk::Labels& record_labels,
                      sdk::Timestamp at) const {
  if (at < start || !(at < end)) {
    return false;
  }
  if (!targets.empty()) {
    const bool any = std::any_of(targets.begin(), targets.end(), [&](const std::string& t) {
      if (!t.empty() && t.back() == '*') {
        return target.substr(0, t.size() - 1) == std::string_view(t).substr(0, t.size() - 1);
      }
      return target == t;
    });
    if (!any) {
      return false;
    }
  }
  for (const auto& [k, v] : labels) {
    auto it = record_labels.find(k);
    if (it == record_labels.end() || it->second != v) {
      return false;
    }
  }
  return true;
}

bool TargetState::idle() const noexcept {
  if (firing) {
    return false;
  }
  return std::all_of(locations.begin(), locations.end(), [](const LocationState& l) {
    return l.consecutive_failures == 0 && !l.failing;
  });
}

Engine::Engine(EngineConfig config, IdFactory make_id)
    : config_(std::move(config)), make_id_(std::move(make_id)) {
  if (!make_id_) {
    make_id_ = [n = std::uint64_t{0}](sdk::Timestamp) mutable {
      return "incident-" + std::to_string(++n);
    };
  }
}

std::size_t Engine::tracked() const noexcept {
  std::size_t n = 0;
  for (const auto& [kind, targets] : kinds_) {
    n += targets.size();
  }
  return n;
}

void Engine::restore(const std::string& kind, const std::string& target, TargetState state) {
  kinds_[kind].insert_or_assign(target, std::move(state));
}

bool Engine::observe(const Observation& o, std::vector<Notification>& out) {
  auto kit = kinds_.find(o.kind);
  if (kit == kinds_.end()) {
    if (o.success) {
      return false;  // nothing to remember about a healthy target
    }
    kit = kinds_.emplace(std::string(o.kind), TargetMap{}).first;
  }
  TargetMap& targets = kit->second;
  auto it = targets.find(o.target);
  if (it == targets.end()) {
    if (o.success) {
      return false;
    }
    it = targets.emplace(std::string(o.target), TargetState{}).first;
  }
  TargetState& t = it->second;
  const Thresholds& th = o.thresholds;

  LocationState* loc = nullptr;
  for (auto& l : t.locations) {
    if (l.name == o.location) {
      loc = &l;
      break;
    }
  }
  if (loc == nullptr) {
    LocationState fresh;
    fresh.name = std::string(o.location);
    t.locations.push_back(std::move(fresh));
    loc = &t.locations.back();
  }
  loc->last_seen = o.time;
  if (o.success) {
    loc->consecutive_failures = 0;
    ++loc->consecutive_successes;
    if (loc->failing && loc->consecutive_successes >= th.success) {
      loc->failing = false;
    }
  } else {
    loc->consecutive_successes = 0;
    if (loc->consecutive_failures++ == 0) {
      loc->first_failure = o.time;
    }
    if (!loc->failing && loc->consecutive_failures >= th.failure) {
      loc->failing = true;
    }
    t.last_error = o.error != nullptr ? std::optional<std::string>(*o.error) : std::nullopt;
    t.last_error_message =
        o.error_message != nullptr ? std::optional<std::string>(*o.error_message) : std::nullopt;
    t.last_status_code = o.status_code;
  }

  // Locations currently seeing the target failing (silent ones expire).
  std::int64_t failing = 0;
  std::int64_t most_failures = 0;
  sdk::Timestamp earliest{INT64_MAX};
  for (auto& l : t.locations) {
    const bool expired =
        config_.location_expiry.count() > 0 &&
        o.time.micros - l.last_seen.micros > config_.location_expiry.count() * 1000;
    if (expired) {
      continue;
    }
    if (l.failing) {
      ++failing;
      earliest = std::min(earliest, l.first_failure);
    }
    most_failures = std::max<std::int64_t>(most_failures, l.consecutive_failures);
  }

  bool save = false;
  const auto notify = [&](bool firing, bool repeat) {
    Notification n;
    n.check_kind = std::string(o.kind);
    n.target = std::string(o.target);
    n.firing = firing;
    n.repeat = repeat;
    n.incident_id = t.incident_id;
    n.since = t.since;
    n.at = o.time;
    n.consecutive_failures = firing ? most_failures : t.peak_failures;
    n.locations_failing = failing;
    n.last_error = t.last_error;
    n.last_error_message = t.last_error_message;
    n.last_status_code = t.last_status_code;
    out.push_back(std::move(n));
  };

  if (!t.firing && failing >= th.min_locations) {
    t.firing = true;
    t.notified = false;
    t.incident_id = make_id_(o.time);
    t.since = earliest;
    t.peak_failures = 0;
    save = true;
  }
  if (t.firing) {
    t.peak_failures = std::max(t.peak_failures, most_failures);
    const bool silenced =
        o.labels != nullptr &&
        std::any_of(config_.silences.begin(), config_.silences.end(),
                    [&](const Silence& s) { return s.matches(o.target, *o.labels, o.time); });
    if (failing < th.min_locations) {
      // Over. A resolved follows every firing that was sent, silenced or not, so that no
      // receiver keeps an incident open forever.
      if (t.notified) {
        notify(false, false);
      }
      t.firing = false;
      t.notified = false;
      t.incident_id.clear();
      t.peak_failures = 0;
      save = true;
    } else if (!t.notified) {
      if (!silenced) {
        notify(true, false);
        t.notified = true;
        t.last_notified = o.time;
        save = true;
      }
    } else if (config_.repeat_interval.count() > 0 && !silenced &&
               o.time.micros - t.last_notified.micros >= config_.repeat_interval.count() * 1000) {
      notify(true, true);
      t.last_notified = o.time;
      save = true;
    }
  }
  if (t.idle()) {
    targets.erase(it);
  }
  return save;
}

std::optional<sdk::Timestamp> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) {
      return std::nullopt;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (std::isdigit(static_cast<unsigned char>(s[i])) == 0) {
        return std::nullopt;
      }
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const auto year = digits(0, 4);
  const auto mon = digits(5, 2);
  const auto day = digits(8, 2);
  const auto hour = digits(11, 2);
  const auto min = digits(14, 2);
  const auto sec = digits(17, 2);
  if (!year || !mon || !day || !hour || !min || !sec || *mon < 1 || *mon > 12 || *day < 1 ||
      *day > 31 || *hour > 23 || *min > 59 || *sec > 60) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) != 0) {
      if (n < 6) {
        micros = micros * 10 + (s[pos] - '0');
      }
      ++n;
      ++pos;
    }
    if (n == 0) {
      return std::nullopt;
    }
    for (int i = n; i < 6; ++i) {
      micros *= 10;
    }
  }
  std::int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const auto oh = digits(pos + 1, 2);
    const auto om = digits(pos + 4, 2);
    if (!oh || !om || pos + 3 >= s.size() || s[pos + 3] != ':' || *oh > 23 || *om > 59) {
      return std::nullopt;
    }
    offset_s = (s[pos] == '+' ? 1 : -1) * (std::int64_t{*oh} * 3600 + std::int64_t{*om} * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *mon - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *min;
  tm.tm_sec = *sec;
  const std::time_t t = timegm(&tm);
  if (tm.tm_mday != *day) {
    return std::nullopt;  // e.g. February 30th
  }
  return sdk::Timestamp{(static_cast<std::int64_t>(t) - offset_s) * 1'000'000 + micros};
}

}  // namespace webmon::plugins::alert
