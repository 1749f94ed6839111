// The pure parts of signed tenant tokens (compact JWS, HS256): base64url, splitting a token,
// the key list of pg_tenant.context_secret, and a comparison whose time does not depend on where
// two strings differ. No PostgreSQL inside: unit-tested (test/unit/token_test.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pg_tenant::token {

// RFC 4648 section 5, without padding (as JWS uses it).
std::string Base64UrlEncode(std::string_view bytes);
// nullopt for any character outside the alphabet, padding, or an impossible length.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// True when a and b are equal; the time taken depends on their lengths only.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// header.payload.signature, each part non-empty base64url text.
struct Parts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // "header.payload": what the signature covers
};
std::optional<Parts> Split(std::string_view token);

// pg_tenant.context_secret: a comma-separated list of key_id:secret. The first key signs; every
// listed key verifies (two at once while keys rotate). A key id is 1 to 32 of A-Z, a-z, 0-9, '_',
// '-'; a secret at least 32 bytes, without a comma.
struct Key {
  std::string id;
  std::string secret;
};
std::optional<std::vector<Key>> ParseKeys(std::string_view setting, std::string *error);

}  // namespace pg_tenant::token
