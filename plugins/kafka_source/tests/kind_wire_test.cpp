// The compact declaration of the webmon-fields header (webmon/common/kind_wire.hpp) and the
// http_check schema the decoder uses, derived from the one declaration (no broker needed).
#include "webmon/common/kind_wire.hpp"

#include <gtest/gtest.h>

#include <string>

#include "webmon/common/http_check_kind.hpp"
#include "webmon/common/schema.hpp"

namespace webmon::common {
namespace {

using sdk::FieldType;

TEST(KindWire, HttpCheckDeclarationInCompactForm) {
  EXPECT_EQ(format_kind_fields(kHttpCheckKind),
            "target:s!*,url:s!,method:s!,agent:s!,success:b!,status_code:i,error:s,"
            "error_message:s,response_time_ms:d!,dns_ms:d,connect_ms:d,tls_ms:d,ttfb_ms:d,"
            "transfer_ms:d,body_bytes:i!,body_bytes_wire:i,http_version:s,remote_ip:s,"
            "redirects:i!,failed_url:s,regex_matched:b,tls_cert_not_after:t,tls_cert_issuer:s,"
            "lateness_ms:d!,"
            "tls_version:s,labels:m!");
}

TEST(KindWire, ParsesWhatItFormats) {
  std::string error;
  const auto w = WireKind::parse("http_check", "1", format_kind_fields(kHttpCheckKind), error);
  ASSERT_NE(w, nullptr) << error;
  const sdk::KindSpec& k = w->spec();
  EXPECT_STREQ(k.name, "http_check");
  EXPECT_EQ(k.version, 1U);
  ASSERT_NE(k.key_field, nullptr);
  EXPECT_STREQ(k.key_field, "target");
  ASSERT_EQ(k.field_count, std::size(kHttpCheckFields));
  for (std::size_t i = 0; i < k.field_count; ++i) {
    EXPECT_STREQ(k.fields[i].name, kHttpCheckFields[i].name);
    EXPECT_EQ(k.fields[i].type, kHttpCheckFields[i].type);
    EXPECT_EQ(k.fields[i].nullable, kHttpCheckFields[i].nullable);
  }
  EXPECT_EQ(format_kind_fields(k), format_kind_fields(kHttpCheckKind));
}

TEST(KindWire, MalformedDeclarationsNameTheEntryAndTheProblem) {
  struct Case {
    const char* kind;
    const char* version;
    const char* fields;
    const char* error;
  };
  const Case cases[] = {
      {"Bad-Kind", "1", "a:s", "header webmon-kind 'Bad-Kind' is not a valid kind name"},
      {"k", "0", "a:s", "kind 'k': header webmon-kind-version '0' is not a schema version"},
      {"k", "", "a:s", "kind 'k': header webmon-kind-version '' is not a schema version"},
      {"k", "1", "a", "kind 'k': header webmon-fields entry 1 'a': expected name:type"},
      {"k", "1", "a:s,B:i", "entry 2 'B:i': not a valid field name"},
      {"k", "1", "a:q", "entry 1 'a:q': unknown type (expected one of b i d s t m)"},
      {"k", "1", "a:s!x", "entry 1 'a:s!x': unexpected 'x' after the type"},
      {"k", "1", "a:s,a:i", "entry 2 'a:i': declared twice"},
      {"k", "1", "a:s*,b:s*", "entry 2 'b:s*': a second key field"},
      {"k", "1", "a:i*", "entry 1 'a:i*': the key field must be a string"},
      {"k", "1", "tags:m", "entry 1 'tags:m': only 'labels' is a string map"},
      {"k", "1", "labels:s", "entry 1 'labels:s': only 'labels' is a string map"},
      {"k", "1", "time:t", "entry 1 'time:t': 'time' is implicit in every record"},
      {"k", "1", "a:s,kind_hash:s",
       "entry 2 'kind_hash:s': 'kind_hash' is reserved for the wire format's envelope"},
      {"k", "1", "a:s,", "entry 2 '': expected name:type"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_EQ(WireKind::parse(c.kind, c.version, c.fields, error), nullptr) << c.fields;
    EXPECT_NE(error.find(c.error), std::string::npos) << c.fields << " -> " << error;
  }
}

TEST(KindWire, AFieldChangingTypeIsNamedWithBothTypesAndVersions) {
  std::string error;
  const auto v1 = WireKind::parse("svc", "1", "target:s!*,port:i!,labels:m!", error);
  const auto v2 = WireKind::parse("svc", "2", "target:s!*,port:i!,rtt_ms:d,labels:m!", error);
  const auto bad = WireKind::parse("svc", "3", "target:s!*,port:s!,labels:m!", error);
  ASSERT_TRUE(v1 && v2 && bad) << error;
  EXPECT_EQ(incompatibility(v1->spec(), v2->spec()), std::nullopt);  // a field added
  EXPECT_EQ(incompatibility(v2->spec(), v1->spec()), std::nullopt);
  EXPECT_EQ(incompatibility(v2->spec(), bad->spec()),
            "kind 'svc' field 'port' changes type from int (known declaration, version 2) to "
            "string (message headers, version 3)");
}

TEST(HttpCheckSchema, IsTheDeclarationWithoutLabels) {
  const KindSchema* s = find_schema("http_check");
  ASSERT_NE(s, nullptr);
  std::size_t i = 0;
  for (const auto& f : kHttpCheckFields) {
    if (f.type == FieldType::string_map) {
      continue;
    }
    ASSERT_LT(i, s->fields.size());
    EXPECT_EQ(s->fields[i].name, f.name);
    EXPECT_EQ(s->fields[i].type, sdk::value_type_of(f.type)) << f.name;
    EXPECT_EQ(s->fields[i].nullable, f.nullable) << f.name;
    ++i;
  }
  EXPECT_EQ(i, s->fields.size());
  EXPECT_EQ(find_schema("tcp_check"), nullptr);
}

TEST(HttpCheckSchema, OwnedSchemaFromADeclarationMatchesTheCompiledOne) {
  const OwnedKindSchema owned(kHttpCheckKind);
  const KindSchema* compiled = find_schema("http_check");
  ASSERT_EQ(owned.schema().fields.size(), compiled->fields.size());
  EXPECT_EQ(owned.schema().kind, "http_check");
  for (std::size_t i = 0; i < compiled->fields.size(); ++i) {
    EXPECT_EQ(owned.schema().fields[i].name, compiled->fields[i].name);
    EXPECT_EQ(owned.schema().fields[i].type, compiled->fields[i].type);
    EXPECT_EQ(owned.schema().fields[i].nullable, compiled->fields[i].nullable);
  }
}

}  // namespace
}  // namespace webmon::common
