// The agent's registry of record kinds: declarations from loaded plugins (at build time) and
// from sources that learn kinds at run time (kafka_source). Owns copies of every declaration,
// validates them and checks records against them.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "webmon/sdk/kind.hpp"
#include "webmon/sdk/record.hpp"

namespace webmon::agent {

/// An owned copy of a kind declaration whose KindSpec points into its own storage.
class OwnedKind {
 public:
  explicit OwnedKind(const sdk::KindSpec& spec);
  OwnedKind(const OwnedKind&) = delete;
  OwnedKind& operator=(const OwnedKind&) = delete;
  [[nodiscard]] const sdk::KindSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] std::span<const sdk::FieldSpec> fields() const noexcept { return fields_; }
  [[nodiscard]] const sdk::FieldSpec* find(std::string_view name) const noexcept;

 private:
  std::deque<std::string> text_;
  std::vector<sdk::FieldSpec> fields_;
  sdk::KindSpec spec_{};
};

/// Reads a plugin's KindSpec (and its fields) with the plugin's strides into host-sized
/// structs. The result still points into the plugin's memory (use OwnedKind to keep it).
sdk::KindSpec read_kind(const void* base, std::size_t index, std::uint32_t stride);
sdk::FieldSpec read_field(const void* base, std::size_t index, std::uint32_t stride);

/// Whether `name` is a valid kind or field name: [a-z][a-z0-9_]*, at most 63 characters.
bool valid_identifier(std::string_view name) noexcept;

/// The first problem of a declaration (duplicate field, unknown type, bad identifier, key
/// field not a string field ...), or nullopt.
std::optional<std::string> check_declaration(const sdk::KindSpec& spec);

/// Why `newer` cannot replace `older` (a field changing type), or nullopt when it can (same
/// fields, or fields added).
std::optional<std::string> check_compatible(const sdk::KindSpec& older, const sdk::KindSpec& newer);

/// The first way `record` does not match `kind` (a missing non-nullable field, a field of the
/// wrong type, a field not declared), or nullopt.
std::optional<std::string> check_record(const sdk::Record& record, const OwnedKind& kind);

class KindRegistry {
 public:
  /// Adds or upgrades a declaration. Returns the reason when it is malformed or incompatible.
  std::optional<std::string> add(const sdk::KindSpec& spec);
  /// The current declaration of a kind, or nullptr; valid for the registry's lifetime.
  [[nodiscard]] const OwnedKind* find(std::string_view name) const noexcept;
  /// Every kind, by name.
  [[nodiscard]] std::vector<const OwnedKind*> all() const;

 private:
  mutable std::mutex mu_;
  std::deque<std::unique_ptr<OwnedKind>> storage_;  // never freed: pointers stay valid
  std::map<std::string, const OwnedKind*, std::less<>> current_;
};

}  // namespace webmon::agent
