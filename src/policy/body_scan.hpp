// Names a function body writes to, found by pattern where no parser can help (PL/pgSQL bodies:
// only PL/pgSQL itself parses them). Pure C++, unit-tested. A heuristic for the audit's review
// warnings, never a refusal: dynamic SQL (EXECUTE) is out of its reach.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pg_tenant::policy {

// A name as written: schema (may be empty) and object, each unquoted ("A""b" -> A"b) or folded
// to lower case when written without quotes.
struct WrittenName {
  std::string schema;
  std::string name;
  bool operator==(const WrittenName &other) const { return schema == other.schema && name == other.name; }
};

// The targets of INSERT INTO, UPDATE, DELETE FROM, MERGE INTO and COPY ... FROM in body,
// outside comments and string literals.
std::vector<WrittenName> WriteTargets(std::string_view body);

}  // namespace pg_tenant::policy
