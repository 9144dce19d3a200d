// kafka_source: the declaration each message is decoded with (see wire_kinds.hpp).
#include "wire_kinds.hpp"

#include <cstring>

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

rd_kafka_headers_t* WireKinds::Slot::headers() const noexcept {
  rd_kafka_headers_t* hdrs = nullptr;
  if (message_ == nullptr || rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(message_),
                                                      &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return nullptr;
  }
  return hdrs;
}

const common::KindSchema* WireKinds::Slot::from_entry(const Entry* e, std::string_view kind,
                                                      bool by_hash, std::string& error) {
  if (!e->error.empty()) {
    error = e->error;
    return nullptr;
  }
  if (kind != e->kind) {
    error = "the value's kind '" + std::string(kind.substr(0, 64)) +
            (by_hash ? "' differs from the kind its kind_hash names, '" + e->kind + "'"
                     : "' differs from its header webmon-kind '" + e->kind + "'");
    return nullptr;
  }
  return &e->schema->schema();
}

const common::KindSchema* WireKinds::Slot::find(std::string_view kind, std::string_view kind_hash,
                                                std::string& error) {
  rd_kafka_headers_t* hdrs = nullptr;  // read only when needed
  bool headers_read = false;
  if (kind_hash.size() == common::kKindHashSize) {
    // The hot path: a hash this thread met lately (compares, no lock), else the shared map;
    // the headers are read only for a hash this consumer has not learned yet.
    for (const Recent& r : recent_) {
      if (r.entry != nullptr && std::memcmp(r.hash.data(), kind_hash.data(), r.hash.size()) == 0) {
        return from_entry(r.entry, kind, true, error);
      }
    }
    const Entry* e = owner_.by_hash(kind_hash);
    if (e == nullptr) {
      hdrs = headers();
      headers_read = true;
      const auto fields = hdrs != nullptr ? header(hdrs, "webmon-fields") : std::nullopt;
      if (fields) {
        const std::string_view hkind = header(hdrs, "webmon-kind").value_or(std::string_view());
        const std::string_view version =
            header(hdrs, "webmon-kind-version").value_or(std::string_view());
        const std::string h = common::kind_hash(hkind, version, *fields);
        if (h != kind_hash) {
          error = "'kind_hash' " + std::string(kind_hash) +
                  " does not match the declaration in the message headers (webmon-kind, "
                  "webmon-kind-version and webmon-fields hash to " +
                  h + ")";
          return nullptr;
        }
        e = owner_.lookup(hkind, version, *fields);
        owner_.remember(kind_hash, e);
      }
      // No declaration to learn the hash from (headers lost on the way, say): decoded like a
      // message without one, with the declaration the agent knows for its kind (below).
    }
    if (e != nullptr) {
      Recent& slot = recent_[recent_next_];
      recent_next_ = (recent_next_ + 1) % recent_.size();
      std::memcpy(slot.hash.data(), kind_hash.data(), slot.hash.size());
      slot.entry = e;
      return from_entry(e, kind, true, error);
    }
  }
  if (!headers_read) {
    hdrs = headers();
  }
  if (hdrs != nullptr) {
    if (const auto fields = header(hdrs, "webmon-fields")) {
      const std::string_view hkind = header(hdrs, "webmon-kind").value_or(std::string_view());
      const std::string_view version =
          header(hdrs, "webmon-kind-version").value_or(std::string_view());
      // The same declaration as the previous such message's (a string compare), else a lookup.
      if (last_ == nullptr || last_->fields != *fields || last_->kind != hkind ||
          last_->version != version) {
        last_ = owner_.lookup(hkind, version, *fields);
      }
      return from_entry(last_, kind, false, error);
    }
  }
  // No declaration in the message: the one the agent knows for the value's kind.
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

const WireKinds::Entry* WireKinds::by_hash(std::string_view kind_hash) {
  std::lock_guard lock(mu_);
  const auto it = hashes_.find(std::string(kind_hash));
  return it != hashes_.end() ? it->second : nullptr;
}

void WireKinds::remember(std::string_view kind_hash, const Entry* e) {
  std::lock_guard lock(mu_);
  // At most as many hashes as declarations; past that, a new hash is checked against its
  // message's headers each time it comes.
  if (hashes_.size() < kMaxDeclarations) {
    hashes_.emplace(std::string(kind_hash), e);
  }
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
