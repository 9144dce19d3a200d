// Message templates and summaries (see template.hpp).
#include "webmon/notify/template.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "webmon/notify/alert_kind.hpp"
#include "webmon/sdk/util.hpp"

namespace webmon::notify {
namespace {

constexpr std::string_view kSpecial[] = {"kind", "id", "time", "summary", "record"};

bool known_name(std::string_view name) {
  if (std::find(std::begin(kSpecial), std::end(kSpecial), name) != std::end(kSpecial)) {
    return true;
  }
  for (const auto& f : kAlertFields) {
    if (name == f.name && name != "labels") {
      return true;
    }
  }
  for (std::string_view prefix : {"labels.", "field."}) {
    if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix) {
      return true;
    }
  }
  return false;
}

bool valid_chars(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
  });
}

std::string duration_text(std::int64_t ms) {
  std::int64_t s = ms / 1000;
  std::string out;
  if (s >= 86400) {
    out += std::to_string(s / 86400) + "d ";
    s %= 86400;
  }
  if (s >= 3600 || !out.empty()) {
    out += std::to_string(s / 3600) + "h ";
    s %= 3600;
  }
  if (s >= 60 || !out.empty()) {
    out += std::to_string(s / 60) + "m ";
    s %= 60;
  }
  return out + std::to_string(s) + "s";
}

nlohmann::json value_json(const sdk::Value& v) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::null:
      return nullptr;
    case sdk::ValueType::boolean:
      return std::get<bool>(v);
    case sdk::ValueType::integer:
      return std::get<std::int64_t>(v);
    case sdk::ValueType::floating:
      return std::get<double>(v);
    case sdk::ValueType::string:
      return std::get<std::string>(v);
    case sdk::ValueType::timestamp:
      return sdk::format_rfc3339(std::get<sdk::Timestamp>(v));
  }
  return nullptr;
}

}  // namespace

std::string json_escape(std::string_view s) {
  std::string d =
      nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return d.substr(1, d.size() - 2);
}

std::string value_text(const sdk::Value& v) {
  switch (sdk::type_of(v)) {
    case sdk::ValueType::null:
      return "";
    case sdk::ValueType::boolean:
      return std::get<bool>(v) ? "true" : "false";
    case sdk::ValueType::integer:
      return std::to_string(std::get<std::int64_t>(v));
    case sdk::ValueType::floating:
      return nlohmann::json(std::get<double>(v)).dump();
    case sdk::ValueType::string:
      return std::get<std::string>(v);
    case sdk::ValueType::timestamp:
      return sdk::format_rfc3339(std::get<sdk::Timestamp>(v));
  }
  return "";
}

std::string record_json(const sdk::Record& r) {
  nlohmann::ordered_json j;
  j["kind"] = r.kind;
  j["id"] = r.id;
  j["time"] = sdk::format_rfc3339(r.time);
  for (const auto& f : r.fields) {
    j[f.name] = value_json(f.value);
  }
  j["labels"] = nlohmann::json::object();
  for (const auto& [k, v] : r.labels) {
    j["labels"][k] = v;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string summary(const sdk::Record& r) {
  auto text = [&](std::string_view name) {
    const sdk::Value* v = r.find(name);
    return v != nullptr ? value_text(*v) : std::string();
  };
  if (r.kind == "alert") {
    const std::string state = text("state");
    std::string s = "[" + std::string(state == "firing" ? "FIRING" : "RESOLVED") + "] " +
                    text("target") + " (" + text("check_kind") + ")";
    const auto* duration = r.get<std::int64_t>("duration_ms");
    if (state == "firing") {
      s += ": " + text("consecutive_failures") + " consecutive failed checks";
      const auto* locations = r.get<std::int64_t>("locations_failing");
      if (locations != nullptr && *locations > 1) {
        s += " from " + std::to_string(*locations) + " locations";
      }
      const std::string error = text("last_error");
      if (!error.empty()) {
        s += ", " + error;
        const std::string code = text("last_status_code");
        if (!code.empty()) {
          s += " " + code;
        }
        const std::string message = text("last_error_message");
        if (!message.empty()) {
          s += ": " + message;
        }
      }
      if (duration != nullptr) {
        s += " (down for " + duration_text(*duration) + ")";
      }
    } else if (duration != nullptr) {
      s += " after " + duration_text(*duration);
    }
    return s;
  }
  std::string s = r.kind;
  const std::string target = text("target");
  if (!target.empty()) {
    s += " " + target;
  }
  const auto* success = r.get<bool>("success");
  if (success != nullptr) {
    s += *success ? ": ok" : ": failed";
    const std::string error = text("error");
    if (!*success && !error.empty()) {
      s += " (" + error + ")";
    }
  }
  return s;
}

Template::Template(std::string_view text, Escape escape, const sdk::ConfigNode& where)
    : escape_(escape) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      parts_.push_back({true, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) {
      parts_.push_back({true, std::string(text.substr(pos, open - pos))});
    }
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      where.fail("template: '{{' at offset " + std::to_string(open) + " is not closed by '}}'");
    }
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') {
      name.remove_prefix(1);
    }
    while (!name.empty() && name.back() == ' ') {
      name.remove_suffix(1);
    }
    if (!valid_chars(name) || !known_name(name)) {
      where.fail("template: unknown placeholder '{{" + std::string(name) +
                 "}}': use a field of the alert kind (target, state, incident_id, since, "
                 "duration_ms, ...), kind, id, time, summary, record, labels.<name> or "
                 "field.<name>");
    }
    parts_.push_back({false, std::string(name)});
    pos = close + 2;
  }
}

std::string Template::render(const sdk::Record& r) const {
  std::string out;
  for (const auto& p : parts_) {
    if (p.literal) {
      out += p.text;
      continue;
    }
    std::string v;
    const std::string_view name = p.text;
    if (name == "record") {
      out += record_json(r);  // already JSON
      continue;
    }
    if (name == "kind") {
      v = r.kind;
    } else if (name == "id") {
      v = r.id;
    } else if (name == "time") {
      v = sdk::format_rfc3339(r.time);
    } else if (name == "summary") {
      v = summary(r);
    } else if (name.starts_with("labels.")) {
      auto it = r.labels.find(name.substr(7));
      v = it != r.labels.end() ? it->second : "";
    } else {
      const std::string_view field = name.starts_with("field.") ? name.substr(6) : name;
      const sdk::Value* value = r.find(field);
      v = value != nullptr ? value_text(*value) : "";
    }
    out += escape_ == Escape::json ? json_escape(v) : v;
  }
  return out;
}

}  // namespace webmon::notify
