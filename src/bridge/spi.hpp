// SPI for C++ code: every call goes through PgCall, so a PostgreSQL error unwinds the caller's
// C++ objects. Results are copied out as text (SPI's memory is freed by Finish or by the abort).
#pragma once

#include "bridge/bridge.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pg_tenant::spi {

using Value = std::optional<std::string>;  // nullopt for SQL NULL
using Row = std::vector<Value>;

// A query parameter: its type and its value (text parameters are passed as text Datums).
struct Param {
  Oid type;
  Datum value;
  bool is_null = false;
};

// SPI_connect ... SPI_finish. Finish() is explicit: after an error the transaction's abort
// releases SPI, so the destructor must not.
class Session {
 public:
  Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;
  void Finish();

  // Runs one of the extension's fixed statements, returns the rows as text. The plan is
  // prepared once per backend and kept.
  std::vector<Row> Query(const std::string &sql, const std::vector<Param> &params = {});
  // The same for a statement whose result is not needed.
  void Execute(const std::string &sql, const std::vector<Param> &params = {});
  // Runs generated DDL once, unprepared (it is different every time).
  void Run(const std::string &sql);
  // The same for a generated query whose rows are needed.
  std::vector<Row> QueryOnce(const std::string &sql);

 private:
  std::vector<Row> CopyRows(int ncolumns);
  bool open_ = false;
};

Datum TextParam(const std::string &value);

// oid[] and text[] parameters.
Param OidArrayParam(const std::vector<Oid> &oids);
Param TextArrayParam(const std::vector<std::string> &values);

// An oid column's text value as an Oid.
Oid ToOid(const Value &value);

// Runs fn as another role (SetUserIdAndSecContext), restoring the caller's identity after.
// A PostgreSQL error aborts the transaction, which restores it too. extra_context adds
// security-context flags (RestrictedAs).
class AsRole {
 public:
  explicit AsRole(Oid role, int extra_context = 0);
  ~AsRole();
  AsRole(const AsRole &) = delete;
  AsRole &operator=(const AsRole &) = delete;

 private:
  Oid saved_user_;
  int saved_context_;
};

// Runs user-controlled code (a provisioning hook; a statement on a user's table, whose triggers,
// defaults, casts and index expressions its owner wrote) as `role` inside a security-restricted
// operation, the way PostgreSQL's own maintenance commands run a table owner's code since
// CVE-2022-1552: the role's rights and no more, no SET ROLE or SET SESSION AUTHORIZATION, no
// temporary objects, no deferred trigger that could fire after the scope as somebody else
// (PostgreSQL refuses to queue one: 42501), and a GUC nest level of its own, so whatever the code
// sets (SET LOCAL included) ends with the scope. The caller's identity comes back after it, or
// with the abort of an error.
class RestrictedAs {
 public:
  explicit RestrictedAs(Oid role);
  ~RestrictedAs();
  RestrictedAs(const RestrictedAs &) = delete;
  RestrictedAs &operator=(const RestrictedAs &) = delete;

 private:
  AsRole role_;  // made first, restored last: after the GUC level is popped
  int nest_level_;
};

// The owner of a relation; 42P01 when the oid names none.
Oid RelationOwner(Oid relid);

// Pins search_path to "pg_catalog, pg_temp" for the extension's own SQL, the way a function's
// SET clause does (a GUC nest level, popped on exit; an error's abort pops it too). For C
// functions that must first resolve a name the way the user wrote it.
class PinnedSearchPath {
 public:
  PinnedSearchPath();
  ~PinnedSearchPath();
  PinnedSearchPath(const PinnedSearchPath &) = delete;
  PinnedSearchPath &operator=(const PinnedSearchPath &) = delete;

 private:
  int nest_level_;
};

}  // namespace pg_tenant::spi
