#include "common/uuid_text.hpp"

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsHyphenPosition(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

}  // namespace

std::optional<UuidBytes> ParseUuid(std::string_view text) {
  const bool canonical = text.size() == 36;
  if (!canonical && text.size() != 32) return std::nullopt;
  UuidBytes bytes{};
  size_t nibble = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (canonical && IsHyphenPosition(i)) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    int value = HexValue(text[i]);
    if (value < 0) return std::nullopt;
    bytes[nibble / 2] = static_cast<uint8_t>((bytes[nibble / 2] << 4) | value);
    ++nibble;
  }
  return bytes;
}

void FormatUuid(const UuidBytes &bytes, char out[37]) {
  static const char kDigits[] = "0123456789abcdef";
  size_t pos = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[pos++] = '-';
    out[pos++] = kDigits[bytes[i] >> 4];
    out[pos++] = kDigits[bytes[i] & 0xf];
  }
  out[pos] = '\0';
}

std::string FormatUuid(const UuidBytes &bytes) {
  char out[37];
  FormatUuid(bytes, out);
  return std::string(out);
}

}  // namespace pg_tenant
