#include "policy/body_scan.hpp"

#include <cctype>

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::policy {
namespace {

// The body with comments and string literals blanked out (kept the same length), so keywords
// inside them are not taken for statements. Dollar quotes are left: a PL/pgSQL body holds SQL.
std::string Code(std::string_view body) {
  std::string out(body);
  size_t i = 0;
  while (i < out.size()) {
    if (out.compare(i, 2, "--") == 0) {
      while (i < out.size() && out[i] != '\n') out[i++] = ' ';
    } else if (out.compare(i, 2, "/*") == 0) {
      size_t end = out.find("*/", i + 2);
      end = end == std::string::npos ? out.size() : end + 2;
      for (; i < end; ++i) out[i] = ' ';
    } else if (out[i] == '\'') {
      out[i++] = ' ';
      while (i < out.size()) {
        if (out[i] == '\'' && i + 1 < out.size() && out[i + 1] == '\'') {
          out[i++] = ' ';
          out[i++] = ' ';
        } else if (out[i] == '\'') {
          out[i++] = ' ';
          break;
        } else {
          out[i++] = ' ';
        }
      }
    } else {
      ++i;
    }
  }
  return out;
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }

void SkipSpace(const std::string &s, size_t &i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
}

// Matches keyword (case-insensitive) as a whole word at i; moves i past it.
bool Keyword(const std::string &s, size_t &i, std::string_view keyword) {
  if (i + keyword.size() > s.size()) return false;
  for (size_t k = 0; k < keyword.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != keyword[k]) return false;
  if (i + keyword.size() < s.size() && IsWordChar(s[i + keyword.size()])) return false;
  i += keyword.size();
  return true;
}

// One identifier: "quoted" (doubled quotes inside) or a bare word folded to lower case.
bool Identifier(const std::string &s, size_t &i, std::string *out) {
  out->clear();
  if (i < s.size() && s[i] == '"') {
    ++i;
    while (i < s.size()) {
      if (s[i] == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        *out += '"';
        i += 2;
      } else if (s[i] == '"') {
        ++i;
        return !out->empty();
      } else {
        *out += s[i++];
      }
    }
    return false;
  }
  while (i < s.size() && IsWordChar(s[i])) *out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i++])));
  return !out->empty();
}

bool QualifiedName(const std::string &s, size_t &i, WrittenName *name) {
  SkipSpace(s, i);
  std::string first;
  if (!Identifier(s, i, &first)) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::string second;
    if (!Identifier(s, i, &second)) return false;
    *name = {first, second};
  } else {
    *name = {"", first};
  }
  return true;
}

}  // namespace

std::vector<WrittenName> WriteTargets(std::string_view body) {
  const std::string code = Code(body);
  std::vector<WrittenName> targets;
  for (size_t i = 0; i < code.size(); ++i) {
    // Only at the start of a word that is not part of a qualified or quoted name.
    if (i > 0 && (IsWordChar(code[i - 1]) || code[i - 1] == '.' || code[i - 1] == '"')) continue;
    size_t at = i;
    bool found = false;
    if (Keyword(code, at, "insert") || Keyword(code, at, "merge")) {
      SkipSpace(code, at);
      found = Keyword(code, at, "into");
    } else if (Keyword(code, at, "delete")) {
      SkipSpace(code, at);
      found = Keyword(code, at, "from");
    } else if (Keyword(code, at, "update") || Keyword(code, at, "copy")) {
      found = true;
    }
    if (!found) continue;
    SkipSpace(code, at);
    Keyword(code, at, "only");
    WrittenName name;
    // "FOR UPDATE" and "DO UPDATE SET" name no table: "set" and "of" are not table names here.
    if (QualifiedName(code, at, &name) && !(name.schema.empty() && (name.name == "set" || name.name == "of" ||
                                                                     name.name == "nowait" || name.name == "skip")))
      targets.push_back(name);
  }
  return targets;
}

}  // namespace pg_tenant::policy
