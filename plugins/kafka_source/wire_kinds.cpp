// kafka_source: the declaration each message is decoded with (see wire_kinds.hpp).
#include "wire_kinds.hpp"

#include "webmon/common/http_check_kind.hpp"

namespace webmon::plugins::kafka_source {
namespace {

// A header's value, or nullopt when the message has no such header.
std::optional<std::string_view> header(rd_kafka_headers_t* hdrs, const char* name) {
  const void* v = nullptr;
  std::size_t size = 0;
  if (rd_kafka_header_get_last(hdrs, name, &v, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return v != nullptr ? std::string_view(static_cast<const char*>(v), size) : std::string_view();
}

}  // namespace

bool WireKinds::Slot::begin(const rd_kafka_message_t* m, std::string& error) {
  current_ = nullptr;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(m), &hdrs) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      hdrs == nullptr) {
    return true;
  }
  const auto fields = header(hdrs, "webmon-fields");
  if (!fields) {
    return true;  // no declaration in the headers: the kind's known one (find)
  }
  const std::string_view kind = header(hdrs, "webmon-kind").value_or(std::string_view());
  const std::string_view version = header(hdrs, "webmon-kind-version").value_or(std::string_view());
  // The hot path: the same declaration as the previous message (a string compare).
  if (last_ != nullptr && last_->fields == *fields && last_->kind == kind &&
      last_->version == version) {
    current_ = last_;
  } else {
    current_ = owner_.lookup(kind, version, *fields);
    last_ = current_;
  }
  if (!current_->error.empty()) {
    error = current_->error;
    current_ = nullptr;
    return false;
  }
  return true;
}

const common::KindSchema* WireKinds::Slot::find(std::string_view kind, std::string& error) {
  if (current_ != nullptr) {
    if (kind != current_->kind) {
      error = "the value's kind '" + std::string(kind.substr(0, 64)) +
              "' differs from its header webmon-kind '" + current_->kind + "'";
      return nullptr;
    }
    return &current_->schema->schema();
  }
  const std::uint64_t g = owner_.generation_.load(std::memory_order_acquire);
  if (last_schema_ != nullptr && g == generation_ && kind == last_kind_) {
    return last_schema_;
  }
  const common::KindSchema* s = owner_.known(kind, error);
  if (s != nullptr) {
    last_kind_.assign(kind);
    last_schema_ = s;
    generation_ = g;
  }
  return s;
}

const WireKinds::Entry* WireKinds::lookup(std::string_view kind, std::string_view version,
                                          std::string_view fields) {
  std::string key;
  key.reserve(kind.size() + version.size() + fields.size() + 2);
  key.append(kind).append(1, '\n').append(version).append(1, '\n').append(fields);
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    return it->second.get();
  }
  auto e = std::make_unique<Entry>();
  e->kind.assign(kind);
  e->version.assign(version);
  e->fields.assign(fields);
  if (entries_.size() >= kMaxDeclarations) {
    // Not kept: answer with a shared entry that refuses.
    static const Entry overflow{
        "",
        "",
        "",
        nullptr,
        nullptr,
        "more than " + std::to_string(kMaxDeclarations) +
            " distinct kind declarations seen in message headers; this one is not learned"};
    return &overflow;
  }
  if (kind.empty()) {
    e->error = "header webmon-fields without a webmon-kind header";
  } else {
    std::string error;
    e->decl = common::WireKind::parse(kind, version, fields, error);
    if (!e->decl) {
      e->error = error;
    } else {
      const sdk::KindSpec* known = ctx_.find_kind(kind);
      if (known == nullptr && kind == common::kHttpCheckKind.name) {
        known = &common::kHttpCheckKind;
      }
      if (known != nullptr) {
        if (auto problem = common::incompatibility(*known, e->decl->spec())) {
          e->error = *problem;
        }
      }
      if (e->error.empty()) {
        const sdk::Status s = ctx_.register_kind(e->decl->spec());
        if (!s) {
          e->error = "kind '" + e->kind +
                     "': the agent refused the declaration in the message headers: " + s.message();
        } else {
          e->schema = std::make_unique<common::OwnedKindSchema>(e->decl->spec());
          generation_.fetch_add(1, std::memory_order_acq_rel);
          ctx_.info("kind '" + e->kind + "' version " + e->version + " (" +
                    std::to_string(e->decl->spec().field_count) +
                    " fields) learned from message headers");
        }
      }
    }
  }
  const Entry* out = e.get();
  entries_.emplace(std::move(key), std::move(e));
  return out;
}

const common::KindSchema* WireKinds::known(std::string_view kind, std::string& error) {
  std::lock_guard lock(mu_);
  if (const sdk::KindSpec* spec = ctx_.find_kind(kind)) {
    auto it = known_.find(kind);
    if (it == known_.end()) {
      it = known_.emplace(std::string(kind), Known{}).first;
    }
    Known& k = it->second;
    if (k.spec != spec || !k.schema) {
      if (k.schema) {
        retired_.push_back(std::move(k.schema));  // another slot may still use it
      }
      k.spec = spec;
      k.schema = std::make_unique<common::OwnedKindSchema>(*spec);
    }
    return &k.schema->schema();
  }
  if (const common::KindSchema* compiled = common::find_schema(kind)) {
    return compiled;
  }
  error = "kind '" + std::string(kind.substr(0, 64)) +
          "' has no known declaration and the message carries none (no webmon-fields header): "
          "its field types cannot be decoded";
  return nullptr;
}

void WireKinds::register_compiled_in() {
  const sdk::Status s = ctx_.register_kind(common::kHttpCheckKind);
  if (!s) {
    ctx_.warn("the agent refused the compiled-in http_check declaration (" + s.message() +
              "); messages without webmon-fields use the agent's own");
  }
}

}  // namespace webmon::plugins::kafka_source
