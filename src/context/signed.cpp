#include "context/signed.hpp"

#include "bridge/bridge.hpp"
#include "bridge/errcodes.hpp"
#include "bridge/settings.hpp"
#include "context/context.hpp"
#include "common/uuid_text.hpp"
#include "context/token.hpp"
#include "registry/registry.hpp"

extern "C" {
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
}

#include <string>
#include <string_view>

namespace pg_tenant::context {

char *context_secret = nullptr;  // pg_tenant.context_secret: key_id:secret[, ...], owned by guc.c

bool CheckContextSecret(char **newval, void **, GucSource source) noexcept {
  return bridge::CheckSecretSetting(
      "pg_tenant.context_secret", "pg_tenant.context_secret",
      "The form is key_id:secret[, key_id:secret]; each secret has at least 32 bytes.", *newval, source,
      [](const char *value, std::string *error) { return token::ParseKeys(value, error).has_value(); });
}

const char *ShowContextSecret() noexcept { return bridge::ShownSecret(context_secret); }

namespace {

using bridge::PgCall;

constexpr int64 kClockSkewSeconds = 60;  // an issued-at this far in the future is tolerated

std::vector<token::Key> Keys() {
  std::string error;
  auto keys = token::ParseKeys(context_secret != nullptr ? context_secret : "", &error);
  if (!keys || keys->empty())
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "pg_tenant.context_secret is not set", "",
                "A superuser sets it in postgresql.conf or with ALTER SYSTEM: key_id:secret (32 bytes or more).");
  return *keys;
}

std::string Hmac(const std::string &secret, std::string_view message) {
  uint8 digest[PG_SHA256_DIGEST_LENGTH];
  const bool ok = PgCall([&] {
    pg_hmac_ctx *context = pg_hmac_create(PG_SHA256);
    if (context == nullptr) return false;
    const bool done = pg_hmac_init(context, reinterpret_cast<const uint8 *>(secret.data()), secret.size()) == 0 &&
                      pg_hmac_update(context, reinterpret_cast<const uint8 *>(message.data()), message.size()) == 0 &&
                      pg_hmac_final(context, digest, sizeof(digest)) == 0;
    pg_hmac_free(context);
    return done;
  });
  if (!ok) throw Error(ERRCODE_INTERNAL_ERROR, "could not compute HMAC-SHA256");
  return std::string(reinterpret_cast<const char *>(digest), sizeof(digest));
}

int64 UnixNow() {
  return GetCurrentTimestamp() / USECS_PER_SEC + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

Error InvalidToken(const std::string &why) {
  return Error(errcodes::kInvalidTenantToken, "invalid tenant token: " + why, "",
               "Tokens come from tenant.sign() under the current pg_tenant.context_secret.");
}

// A JSON object, or nullptr when the text is not one.
Jsonb *ParseObject(const std::string &text) {
  Jsonb *object = nullptr;
  const bool parsed = PgCall([&] {
    return bridge::WithoutParseError(
        [&] { object = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text.c_str()))); });
  });
  return parsed && object != nullptr && JB_ROOT_IS_OBJECT(object) ? object : nullptr;
}

// A member of a JSON object, as its text (strings) or its number; nullopt when absent or of
// another type.
std::optional<std::string> StringMember(Jsonb *object, const char *name) {
  return PgCall([&]() -> std::optional<std::string> {
    JsonbValue *value = getKeyJsonValueFromContainer(&object->root, name, static_cast<int>(strlen(name)), nullptr);
    if (value == nullptr || value->type != jbvString) return std::nullopt;
    return std::string(value->val.string.val, value->val.string.len);
  });
}

std::optional<int64> NumberMember(Jsonb *object, const char *name) {
  return PgCall([&]() -> std::optional<int64> {
    JsonbValue *value = getKeyJsonValueFromContainer(&object->root, name, static_cast<int>(strlen(name)), nullptr);
    if (value == nullptr || value->type != jbvNumeric) return std::nullopt;
    int64 number = 0;
    const Numeric numeric = value->val.numeric;
    const bool fits = bridge::WithoutParseError(
        [&] { number = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(numeric))); });
    if (!fits) return std::nullopt;
    return number;
  });
}

// Verifies a token and returns the tenant it names.
pg_uuid_t Verify(const std::string &text) {
  const auto parts = token::Split(text);
  if (!parts) throw InvalidToken("it is not header.payload.signature");
  const auto header_json = token::Base64UrlDecode(parts->header);
  const auto payload_json = token::Base64UrlDecode(parts->payload);
  const auto signature = token::Base64UrlDecode(parts->signature);
  if (!header_json || !payload_json || !signature) throw InvalidToken("a part is not base64url");
  Jsonb *header = ParseObject(*header_json);
  if (header == nullptr) throw InvalidToken("the header is not a JSON object");
  if (StringMember(header, "alg") != std::optional<std::string>("HS256")) throw InvalidToken("the algorithm is not HS256");
  const auto key_id = StringMember(header, "kid");
  if (!key_id) throw InvalidToken("the header names no key (kid)");
  const token::Key *key = nullptr;
  const std::vector<token::Key> keys = Keys();
  for (const token::Key &candidate : keys)
    if (candidate.id == *key_id) key = &candidate;
  if (key == nullptr) throw InvalidToken("key \"" + Echo(*key_id) + "\" is not (or no longer) configured");
  if (!token::ConstantTimeEqual(Hmac(key->secret, parts->signing_input), *signature))
    throw InvalidToken("the signature does not match");
  // Signed by us: the payload is ours from here on.
  Jsonb *payload = ParseObject(*payload_json);
  if (payload == nullptr) throw InvalidToken("the payload is not a JSON object");
  const auto tenant_text = StringMember(payload, "tid");
  const auto expires = NumberMember(payload, "exp");
  if (!tenant_text || !expires) throw InvalidToken("the payload has no tid or exp");
  const int64 now = UnixNow();
  if (now >= *expires)
    throw Error(errcodes::kTenantTokenExpired, "tenant token expired", "It expired at unix time " +
                std::to_string(*expires) + ".", "Ask the issuer for a new token.");
  const auto not_before = NumberMember(payload, "nbf");
  const auto issued = NumberMember(payload, "iat");
  if ((not_before && now < *not_before) || (issued && now + kClockSkewSeconds < *issued))
    throw Error(errcodes::kTenantTokenExpired, "tenant token is not valid yet", "", "Check the clocks of issuer and server.");
  const auto id = ParseUuid(*tenant_text);
  if (!id) throw InvalidToken("tid is not a uuid");
  pg_uuid_t tenant;
  memcpy(tenant.data, id->data(), UUID_LEN);
  return tenant;
}

}  // namespace

}  // namespace pg_tenant::context

using namespace pg_tenant;
using namespace pg_tenant::context;

// tenant.sign(id uuid, ttl interval, claims jsonb DEFAULT '{}') returns text: a token for the
// tenant, valid for ttl, signed with the first key of pg_tenant.context_secret.
PG_TENANT_FUNCTION(pg_tenant_sign) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "tenant and ttl must not be NULL");
  const pg_uuid_t tenant = *PG_GETARG_UUID_P(0);
  const Interval *ttl = PG_GETARG_INTERVAL_P(1);
  const int64 seconds = ttl->time / USECS_PER_SEC + static_cast<int64>(ttl->day) * SECS_PER_DAY +
                        static_cast<int64>(ttl->month) * DAYS_PER_MONTH * SECS_PER_DAY;
  if (seconds <= 0) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "a token's ttl must be positive");
  if (registry::FindById(tenant) == nullptr) throw registry::TenantNotFound(registry::IdText(tenant));
  const token::Key key = Keys().front();
  const int64 now = UnixNow();
  // The caller's claims first, ours last: tid, iat and exp cannot be overridden.
  std::string ours = "{\"tid\": \"" + registry::IdText(tenant) + "\", \"iat\": " + std::to_string(now) +
                     ", \"exp\": " + std::to_string(now + seconds) + "}";
  const Datum claims =
      PgCall([&] { return PG_ARGISNULL(2) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")) : PG_GETARG_DATUM(2); });
  if (!PgCall([&] { return JB_ROOT_IS_OBJECT(DatumGetJsonbP(claims)); }))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "a token's claims must be a JSON object");
  std::string payload = PgCall([&] {
    Datum merged = DirectFunctionCall2(jsonb_concat, claims, DirectFunctionCall1(jsonb_in, CStringGetDatum(ours.c_str())));
    return std::string(JsonbToCString(nullptr, &DatumGetJsonbP(merged)->root, VARSIZE(DatumGetJsonbP(merged))));
  });
  const std::string signing_input = token::Base64UrlEncode("{\"alg\": \"HS256\", \"typ\": \"JWT\", \"kid\": \"" + key.id + "\"}") +
                                    "." + token::Base64UrlEncode(payload);
  const std::string result = signing_input + "." + token::Base64UrlEncode(Hmac(key.secret, signing_input));
  PG_RETURN_TEXT_P(PgCall([&] { return cstring_to_text_with_len(result.data(), static_cast<int>(result.size())); }));
}

// tenant.set_signed(token text) returns uuid: enters, for the current transaction, the tenant a
// valid token names (TN011 invalid, TN012 expired or not yet valid, TN001/TN002 as tenant.set).
PG_TENANT_FUNCTION(pg_tenant_set_signed) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "token must not be NULL");
  text *argument = PG_GETARG_TEXT_PP(0);
  const pg_uuid_t tenant = Verify(std::string(VARDATA_ANY(argument), VARSIZE_ANY_EXHDR(argument)));
  (void)EnterableTenant(tenant);
  Enter(tenant, GUC_ACTION_LOCAL, Entry::kSigned);
  auto *result = static_cast<pg_uuid_t *>(PgCall([] { return palloc(sizeof(pg_uuid_t)); }));
  *result = tenant;
  PG_RETURN_UUID_P(result);
}
