// Which declaration each consumed message is decoded with (docs/wire-format.md, "Kinds and
// types on the wire"):
//  * a value with a "kind_hash" this consumer has learned: the declaration learned then (per
//    message: 32-byte compares against the hashes this thread met last, else one map lookup;
//    the headers are not read at all);
//  * a value with a new "kind_hash" and a `webmon-fields` header: the declaration in the
//    message's headers (webmon-kind, webmon-kind-version, webmon-fields), which must hash to
//    it; parsed, checked against the declaration the agent already knows for that kind (a
//    field changing type is refused) and registered with the agent (ctx().register_kind) so
//    sinks downstream know it (a new kind_hash without the header is decoded as below);
//  * a value without "kind_hash" but with a `webmon-fields` header: the declaration in its
//    headers, parsed once per distinct header bytes and cached (per message: the headers are
//    read and compared with the previous message's);
//  * neither (the first wire format, or a producer that did not declare the kind): the
//    declaration the agent knows for the value's `kind` (a loaded plugin's, one registered
//    from an earlier message, or http_check's, compiled in);
//  * none of these: the message cannot be decoded with its types and goes to the dead-letter
//    topic.
// Thread-safe: each decode thread uses a Slot of its own.
#pragma once

#include <librdkafka/rdkafka.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "webmon/common/kind_wire.hpp"
#include "webmon/common/schema.hpp"
#include "webmon/common/wire.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::plugins::kafka_source {

class WireKinds {
 public:
  /// Distinct header declarations kept at most; messages with further new ones are
  /// dead-lettered (a producer inventing declarations must not exhaust memory).
  static constexpr std::size_t kMaxDeclarations = 4096;

  explicit WireKinds(sdk::Context& ctx) : ctx_(ctx) {}
  WireKinds(const WireKinds&) = delete;
  WireKinds& operator=(const WireKinds&) = delete;

  /// One distinct (webmon-kind, webmon-kind-version, webmon-fields) triple.
  struct Entry {
    std::string kind, version, fields;
    std::unique_ptr<common::WireKind> decl;
    std::unique_ptr<common::OwnedKindSchema> schema;
    std::string error;  // set: messages carrying these headers go to the dead-letter topic
  };

  /// One decode thread's view: a SchemaLookup for JsonDecoder, set up per message by begin().
  class Slot final : public common::SchemaLookup {
   public:
    explicit Slot(WireKinds& owner) : owner_(owner) {}
    /// The message about to be decoded (its headers are read only if find() needs them).
    void begin(const rd_kafka_message_t* m) noexcept { message_ = m; }
    /// The declaration of the message given to begin(); nullptr with `error` set when it
    /// cannot be decoded with one (the message goes to the dead-letter topic). Asked twice
    /// for a message the decoder's fast path gives up on: the second answer comes from the
    /// caches the first filled.
    const common::KindSchema* find(std::string_view kind, std::string_view kind_hash,
                                   std::string& error) override;

   private:
    static const common::KindSchema* from_entry(const Entry* e, std::string_view kind, bool by_hash,
                                                std::string& error);
    /// The message's headers (nullptr: none); librdkafka parses them all on the first call.
    rd_kafka_headers_t* headers() const noexcept;

    WireKinds& owner_;
    const rd_kafka_message_t* message_ = nullptr;
    const Entry* last_ = nullptr;  // the previous header declaration (no kind_hash)
    // The kind_hashes this thread met last (a topic of several kinds alternates between a
    // few), tried before the shared map: no lock and no allocation per message.
    struct Recent {
      std::array<char, common::kKindHashSize> hash{};
      const Entry* entry = nullptr;
    };
    std::array<Recent, 8> recent_{};
    std::size_t recent_next_ = 0;
    std::string last_kind_;  // messages without a declaration: the last kind looked up
    const common::KindSchema* last_schema_ = nullptr;
    std::uint64_t generation_ = ~std::uint64_t{0};
  };

  /// Makes the compiled-in declarations (http_check) known to the agent, for the first wire
  /// format's messages and for sinks downstream.
  void register_compiled_in();

 private:
  const Entry* lookup(std::string_view kind, std::string_view version, std::string_view fields);
  /// The declaration learned for a kind_hash, or nullptr.
  const Entry* by_hash(std::string_view kind_hash);
  void remember(std::string_view kind_hash, const Entry* e);
  const common::KindSchema* known(std::string_view kind, std::string& error);

  sdk::Context& ctx_;
  std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;  // never erased
  std::unordered_map<std::string, const Entry*> hashes_;  // kind_hash -> entry, never erased
  struct Known {
    const sdk::KindSpec* spec = nullptr;
    std::unique_ptr<common::OwnedKindSchema> schema;
  };
  std::map<std::string, Known, std::less<>> known_;
  std::vector<std::unique_ptr<common::OwnedKindSchema>> retired_;  // still used by slots
  std::atomic<std::uint64_t> generation_{0};  // bumped whenever a kind is registered
};

}  // namespace webmon::plugins::kafka_source
