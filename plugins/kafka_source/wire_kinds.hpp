// Which declaration each consumed message is decoded with (docs/wire-format.md, "Kinds and
// types on the wire"):
//  * a message with a `webmon-fields` header: the declaration in its headers (webmon-kind,
//    webmon-kind-version, webmon-fields), parsed once per distinct header bytes and cached
//    (per message: one string compare against the previous message's headers), checked
//    against the declaration the agent already knows for that kind (a field changing type is
//    refused), and registered with the agent (ctx().register_kind) so sinks downstream know it;
//  * a message without one (the first wire format, or a producer that did not declare the
//    kind): the declaration the agent knows for the value's `kind` (a loaded plugin's, one
//    registered from an earlier message, or http_check's, compiled in);
//  * neither: the message cannot be decoded with its types and goes to the dead-letter topic.
// Thread-safe: each decode thread uses a Slot of its own.
#pragma once

#include <librdkafka/rdkafka.h>

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
    /// Reads the message's headers. False (with `error`) when its declaration is malformed or
    /// incompatible: the message goes to the dead-letter topic.
    bool begin(const rd_kafka_message_t* m, std::string& error);
    const common::KindSchema* find(std::string_view kind, std::string& error) override;

   private:
    WireKinds& owner_;
    const Entry* last_ = nullptr;     // the previous message's header declaration
    const Entry* current_ = nullptr;  // this message's, or nullptr (none in its headers)
    std::string last_kind_;           // header-less messages: the last kind looked up
    const common::KindSchema* last_schema_ = nullptr;
    std::uint64_t generation_ = ~std::uint64_t{0};
  };

  /// Makes the compiled-in declarations (http_check) known to the agent, for the first wire
  /// format's messages and for sinks downstream.
  void register_compiled_in();

 private:
  const Entry* lookup(std::string_view kind, std::string_view version, std::string_view fields);
  const common::KindSchema* known(std::string_view kind, std::string& error);

  sdk::Context& ctx_;
  std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;  // never erased
  struct Known {
    const sdk::KindSpec* spec = nullptr;
    std::unique_ptr<common::OwnedKindSchema> schema;
  };
  std::map<std::string, Known, std::less<>> known_;
  std::vector<std::unique_ptr<common::OwnedKindSchema>> retired_;  // still used by slots
  std::atomic<std::uint64_t> generation_{0};  // bumped whenever a kind is registered
};

}  // namespace webmon::plugins::kafka_source
