// The bridge between C++ exceptions and PostgreSQL's longjmp-based errors.
//
// Rules (ARCHITECTURE.md, "The bridge"):
//  1. Every SQL-callable function is defined with PG_TENANT_FUNCTION. Its body may throw; the
//     wrapper catches every C++ exception, lets all destructors run, and only then raises the
//     PostgreSQL ERROR (with the SQLSTATE the exception carries).
//  2. A call into PostgreSQL that may ereport while a C++ object with a destructor is alive
//     anywhere between the entry point and the call goes through PgCall. PgCall turns the
//     PostgreSQL error into a PgError exception, so the C++ stack unwinds normally. The lambda
//     passed to PgCall itself must hold no objects with destructors.
//  3. A PgError is always propagated to the entry point (never swallowed): the transaction must
//     abort so PostgreSQL releases what the failed call held.
//  4. Callbacks that PostgreSQL calls (hooks, GUC hooks, invalidation callbacks) never throw.
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "bridge/pg.hpp"

namespace pg_tenant {

// An error raised by the extension's own C++ code; sqlstate is a MAKE_SQLSTATE code.
class Error : public std::exception {
 public:
  Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
      : sqlstate_(sqlstate),
        message_(std::move(message)),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}
  const char *what() const noexcept override { return message_.c_str(); }
  int sqlstate() const { return sqlstate_; }
  const std::string &detail() const { return detail_; }
  const std::string &hint() const { return hint_; }

 private:
  int sqlstate_;
  std::string message_;
  std::string detail_;
  std::string hint_;
};

// A PostgreSQL error caught by PgCall, carried through C++ frames to the entry point.
class PgError : public std::exception {
 public:
  explicit PgError(ErrorData *data) : data_(data) {}
  const char *what() const noexcept override;
  ErrorData *data() const { return data_; }

 private:
  ErrorData *data_;  // palloc'd in the memory context that was current when PgCall started
};

// At most 63 characters of a value the caller passed, for an error text: an error never echoes
// a huge argument into the client's message and the server log.
std::string Echo(std::string_view value);

namespace bridge {

using FunctionBody = Datum (*)(FunctionCallInfo);

namespace detail {
// Records the exception being handled (call it only inside a catch block; it never throws).
void CaptureCurrentException(ErrorData **pg_error) noexcept;
// Raises what CaptureCurrentException recorded as a PostgreSQL ERROR.
[[noreturn]] void RaiseCaptured(ErrorData *pg_error);
}  // namespace detail

// Runs body; converts any C++ exception into a PostgreSQL ERROR after unwinding.
Datum Invoke(FunctionBody body, FunctionCallInfo fcinfo);

// For hooks PostgreSQL calls (executor hooks): runs fn, and turns a C++ exception into a
// PostgreSQL ERROR after every destructor of fn has run, as Invoke does for SQL functions.
template <typename Fn>
void Guarded(Fn &&fn) {
  ErrorData *pg_error = nullptr;
  try {
    fn();
    return;
  } catch (...) {
    detail::CaptureCurrentException(&pg_error);
  }
  detail::RaiseCaptured(pg_error);
}

// Called by PgCall after PostgreSQL longjmp'd to it: copies and flushes the error, throws PgError.
[[noreturn]] void ThrowCaughtPgError(MemoryContext context_before_call);

// Restores PostgreSQL's error-handling stacks when it goes out of scope, however the scope is
// left: normally, by a C++ exception from the callee, or after PostgreSQL longjmp'd back.
class PgExceptionStacks {
 public:
  PgExceptionStacks() noexcept : exception_stack_(PG_exception_stack), context_stack_(error_context_stack) {}
  ~PgExceptionStacks() noexcept {
    PG_exception_stack = exception_stack_;
    error_context_stack = context_stack_;
  }
  PgExceptionStacks(const PgExceptionStacks &) = delete;
  PgExceptionStacks &operator=(const PgExceptionStacks &) = delete;

 private:
  sigjmp_buf *exception_stack_;
  ErrorContextCallback *context_stack_;
};

// Runs fn (which calls PostgreSQL) so that a PostgreSQL error becomes a PgError exception.
// fn itself must own no object with a destructor across a call that can ereport: the longjmp
// lands here, not in fn.
template <typename Fn>
auto PgCall(Fn &&fn) -> decltype(fn()) {
  MemoryContext context_before_call = CurrentMemoryContext;
  {
    PgExceptionStacks restore_on_exit;
    sigjmp_buf local_exception_stack;
    if (sigsetjmp(local_exception_stack, 0) == 0) {
      PG_exception_stack = &local_exception_stack;
      return fn();
    }
  }
  ThrowCaughtPgError(context_before_call);
}

// "schema"."table" of a relation, quoted as needed: the one spelling of a table in messages.
std::string RelationName(Oid relid);

}  // namespace bridge
}  // namespace pg_tenant

// Defines the SQL-callable C function `name` (C linkage, V1 calling convention) whose body is the
// block that follows the macro. The body runs inside bridge::Invoke.
#define PG_TENANT_FUNCTION(name)                                                            \
  static Datum name##_body(FunctionCallInfo fcinfo);                                        \
  extern "C" {                                                                              \
  PG_FUNCTION_INFO_V1(name);                                                                \
  }                                                                                         \
  Datum name(PG_FUNCTION_ARGS) { return ::pg_tenant::bridge::Invoke(name##_body, fcinfo); } \
  static Datum name##_body(FunctionCallInfo fcinfo)
