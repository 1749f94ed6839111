// Probes that prove the bridge works, used by sql/04_bridge.sql. They live in a test-only library
// (pg_tenant_bridge_probes, test/bridge/Makefile) built with the bridge's own source; the test
// declares SQL functions for them (as superuser) in a scratch schema.
#include <stdexcept>
#include <string>
#include <vector>

#include "bridge/bridge.hpp"

extern "C" {
PG_MODULE_MAGIC;
}

namespace pg_tenant {
namespace {

long live_probes = 0;

// An object with a real destructor and heap memory: if a longjmp skipped its destructor,
// live_probes would stay raised and the vector's memory would leak.
class Probe {
 public:
  Probe() : payload_(64, std::string(32, 'x')) { ++live_probes; }
  ~Probe() { --live_probes; }
  Probe(const Probe &) = delete;
  Probe &operator=(const Probe &) = delete;

 private:
  std::vector<std::string> payload_;
};

}  // namespace
}  // namespace pg_tenant

using pg_tenant::Error;
using pg_tenant::Probe;
using pg_tenant::bridge::PgCall;

// selftest_throw(kind text): throws a C++ exception of the named kind from inside C++ frames.
PG_TENANT_FUNCTION(pg_tenant_selftest_throw) {
  std::string kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
  Probe probe;
  if (kind == "error")
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "selftest: pg_tenant::Error", "the detail", "the hint");
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "std") throw std::runtime_error("selftest: std::runtime_error");
  if (kind == "unknown") throw 42;
  PG_RETURN_VOID();
}

// selftest_pg_error(input text) returns int: parses input with int4in, a PostgreSQL function
// that ereports on bad input, while C++ objects are alive in this frame.
PG_TENANT_FUNCTION(pg_tenant_selftest_pg_error) {
  const char *input = text_to_cstring(PG_GETARG_TEXT_PP(0));
  Probe outer;
  std::string copy(input);
  Probe inner;
  Datum value = PgCall([&] { return DirectFunctionCall1(int4in, CStringGetDatum(copy.c_str())); });
  PG_RETURN_DATUM(value);
}

// selftest_live_probes() returns bigint: Probe objects alive now (0 unless a destructor was skipped).
PG_TENANT_FUNCTION(pg_tenant_selftest_live_probes) { PG_RETURN_INT64(pg_tenant::live_probes); }

// selftest_throw_in_pgcall(input text) returns int: a C++ exception leaves a PgCall (and is caught
// here); then a PostgreSQL error is raised with no PgCall around it. It must reach PostgreSQL's
// own handler (an ERROR), not the dead frame of the PgCall that was left by the exception.
PG_TENANT_FUNCTION(pg_tenant_selftest_throw_in_pgcall) {
  const char *input = text_to_cstring(PG_GETARG_TEXT_PP(0));
  try {
    PgCall([] { throw std::runtime_error("thrown inside PgCall"); });
  } catch (const std::runtime_error &) {
  }
  // No C++ object is alive from here on: a longjmp may leave this frame.
  PG_RETURN_DATUM(DirectFunctionCall1(int4in, CStringGetDatum(input)));
}
