#include "kinds.hpp"

#include <cstring>
#include <set>

namespace webmon::agent {

namespace {

template <typename T>
T read_strided(const void* base, std::size_t index, std::uint32_t stride) {
  T out{};
  const auto* p = static_cast<const unsigned char*>(base) + index * stride;
  std::memcpy(&out, p, std::min<std::size_t>(stride, sizeof(T)));
  return out;
}

const char* keep(std::deque<std::string>& store, const char* s) {
  if (s == nullptr) {
    return nullptr;
  }
  return store.emplace_back(s).c_str();
}

bool known_type(sdk::FieldType t) noexcept {
  return t >= sdk::FieldType::boolean && t <= sdk::FieldType::string_map;
}

}  // namespace

sdk::KindSpec read_kind(const void* base, std::size_t index, std::uint32_t stride) {
  return read_strided<sdk::KindSpec>(base, index, stride);
}

sdk::FieldSpec read_field(const void* base, std::size_t index, std::uint32_t stride) {
  return read_strided<sdk::FieldSpec>(base, index, stride);
}

OwnedKind::OwnedKind(const sdk::KindSpec& spec) {
  fields_.reserve(spec.field_count);
  for (std::size_t i = 0; i < spec.field_count; ++i) {
    sdk::FieldSpec f = read_field(spec.fields, i, spec.field_size);
    f.name = keep(text_, f.name);
    f.unit = keep(text_, f.unit != nullptr ? f.unit : "");
    f.description = keep(text_, f.description != nullptr ? f.description : "");
    fields_.push_back(f);
  }
  spec_ = spec;
  spec_.struct_size = sizeof(sdk::KindSpec);
  spec_.name = keep(text_, spec.name);
  spec_.fields = fields_.data();
  spec_.field_count = fields_.size();
  spec_.field_size = sizeof(sdk::FieldSpec);
  spec_.key_field = keep(text_, spec.key_field);
  spec_.description = keep(text_, spec.description != nullptr ? spec.description : "");
}

const sdk::FieldSpec* OwnedKind::find(std::string_view name) const noexcept {
  for (const auto& f : fields_) {
    if (name == f.name) {
      return &f;
    }
  }
  return nullptr;
}

bool valid_identifier(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') {
    return false;
  }
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> check_declaration(const sdk::KindSpec& spec) {
  if (spec.name == nullptr) {
    return "a kind without a name";
  }
  const std::string kind = spec.name;
  if (kind == sdk::kAnyKind) {
    return std::nullopt;
  }
  if (!valid_identifier(kind)) {
    return "kind '" + kind + "': not a valid name (use [a-z][a-z0-9_]*, at most 63 characters)";
  }
  if (spec.version == 0) {
    return "kind '" + kind + "': schema version must be 1 or more";
  }
  if (spec.field_count > 0 && spec.fields == nullptr) {
    return "kind '" + kind + "': fields missing";
  }
  std::set<std::string, std::less<>> seen;
  bool key_found = spec.key_field == nullptr;
  for (std::size_t i = 0; i < spec.field_count; ++i) {
    const sdk::FieldSpec f = read_field(spec.fields, i, spec.field_size);
    const std::string name = f.name != nullptr ? f.name : "";
    const std::string where = "kind '" + kind + "', field " + std::to_string(i + 1) +
                              (name.empty() ? "" : " '" + name + "'") + ": ";
    if (!valid_identifier(name)) {
      return where + "not a valid field name (use [a-z][a-z0-9_]*, at most 63 characters)";
    }
    if (name == "kind_hash") {
      return where + "'kind_hash' is reserved for the wire format's envelope";
    }
    if (name == "id" || name == "time" || name == "kind" || name == "schema") {
      return where + "'" + name + "' is implicit in every record and cannot be declared";
    }
    if (!known_type(f.type)) {
      return where + "unknown type " + std::to_string(static_cast<int>(f.type));
    }
    if (f.type == sdk::FieldType::string_map && name != "labels") {
      return where + "only 'labels' can be a string map";
    }
    if (name == "labels" && f.type != sdk::FieldType::string_map) {
      return where + "'labels' must be a string map";
    }
    if (!seen.insert(name).second) {
      return where + "declared twice";
    }
    if (spec.key_field != nullptr && name == spec.key_field) {
      if (f.type != sdk::FieldType::string) {
        return where + "the key field must be a string";
      }
      key_found = true;
    }
  }
  if (!key_found) {
    return "kind '" + kind + "': key field '" + spec.key_field + "' is not one of its fields";
  }
  return std::nullopt;
}

std::optional<std::string> check_compatible(const sdk::KindSpec& older,
                                            const sdk::KindSpec& newer) {
  for (std::size_t i = 0; i < newer.field_count; ++i) {
    const sdk::FieldSpec n = read_field(newer.fields, i, newer.field_size);
    for (std::size_t j = 0; j < older.field_count; ++j) {
      const sdk::FieldSpec o = read_field(older.fields, j, older.field_size);
      if (std::strcmp(o.name, n.name) == 0 && o.type != n.type) {
        return "kind '" + std::string(newer.name) + "' field '" + n.name + "' changes type from " +
               sdk::to_string(o.type) + " (version " + std::to_string(older.version) + ") to " +
               sdk::to_string(n.type) + " (version " + std::to_string(newer.version) + ")";
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_record(const sdk::Record& record, const OwnedKind& kind) {
  const auto fields = kind.fields();
  // Records usually carry their fields in declaration order: try the same position first.
  std::size_t pos = 0;
  std::size_t required_seen = 0;
  for (const auto& f : record.fields) {
    const sdk::FieldSpec* spec = nullptr;
    if (pos < fields.size() && f.name == fields[pos].name) {
      spec = &fields[pos];
    } else {
      spec = kind.find(f.name);
    }
    if (spec == nullptr || spec->type == sdk::FieldType::string_map) {
      return "field '" + f.name + "' is not declared by kind '" + kind.spec().name + "'";
    }
    pos = static_cast<std::size_t>(spec - fields.data()) + 1;
    required_seen += spec->nullable ? 0 : 1;
    const sdk::ValueType t = sdk::type_of(f.value);
    if (t == sdk::ValueType::null) {
      if (!spec->nullable) {
        return "field '" + f.name + "' is null but not nullable";
      }
      continue;
    }
    if (t != sdk::value_type_of(spec->type)) {
      static constexpr const char* kNames[] = {"null",   "bool",   "int",
                                               "double", "string", "timestamp"};
      return "field '" + f.name + "': expected " + sdk::to_string(spec->type) + ", got " +
             kNames[static_cast<int>(t)];
    }
  }
  std::size_t required = 0;
  for (const auto& spec : fields) {
    required += (!spec.nullable && spec.type != sdk::FieldType::string_map) ? 1 : 0;
  }
  if (required_seen < required) {
    for (const auto& spec : fields) {
      if (!spec.nullable && spec.type != sdk::FieldType::string_map &&
          record.find(spec.name) == nullptr) {
        return "required field '" + std::string(spec.name) + "' is missing";
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> KindRegistry::add(const sdk::KindSpec& spec) {
  if (auto problem = check_declaration(spec)) {
    return problem;
  }
  if (std::string_view(spec.name) == sdk::kAnyKind) {
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  auto it = current_.find(std::string_view(spec.name));
  if (it != current_.end()) {
    const sdk::KindSpec& old = it->second->spec();
    if (auto problem = check_compatible(old, spec)) {
      return problem;
    }
    if (spec.version < old.version ||
        (spec.version == old.version && spec.field_count <= old.field_count)) {
      return std::nullopt;  // already known (or older): keep the current one
    }
  }
  storage_.push_back(std::make_unique<OwnedKind>(spec));
  current_[spec.name] = storage_.back().get();
  return std::nullopt;
}

const OwnedKind* KindRegistry::find(std::string_view name) const noexcept {
  std::lock_guard lock(mu_);
  auto it = current_.find(name);
  return it != current_.end() ? it->second : nullptr;
}

std::vector<const OwnedKind*> KindRegistry::all() const {
  std::lock_guard lock(mu_);
  std::vector<const OwnedKind*> out;
  for (const auto& [name, kind] : current_) {
    out.push_back(kind);
  }
  return out;
}

}  // namespace webmon::agent
