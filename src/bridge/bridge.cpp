#include "bridge/bridge.hpp"

#include <new>

namespace pg_tenant {

const char *PgError::what() const noexcept {
  return (data_ != nullptr && data_->message != nullptr) ? data_->message : "PostgreSQL error";
}

std::string Echo(std::string_view value) {
  return value.size() <= 63 ? std::string(value) : std::string(value.substr(0, 60)) + "...";
}

namespace bridge {

void ThrowCaughtPgError(MemoryContext context_before_call) {
  // PostgreSQL left us in ErrorContext; the copy must live in the caller's context. Copying
  // allocates, and may itself fail: that failure must not longjmp past the C++ frames either.
  MemoryContextSwitchTo(context_before_call);
  ErrorData *volatile data = nullptr;
  {
    PgExceptionStacks restore_on_exit;
    sigjmp_buf local_exception_stack;
    if (sigsetjmp(local_exception_stack, 0) == 0) {
      PG_exception_stack = &local_exception_stack;
      data = CopyErrorData();
    }
  }
  MemoryContextSwitchTo(context_before_call);
  FlushErrorState();
  throw PgError(data);  // data is nullptr when the copy failed: Invoke reports out of memory
}

namespace {

// Storage for the error of a C++ exception, filled inside the catch block without allocating
// (an allocation there could itself ereport and skip the exception's destructor).
struct PendingError {
  int sqlstate = 0;
  char message[1024] = {0};
  char detail[1024] = {0};
  char hint[1024] = {0};
};

void Copy(char (&to)[1024], const char *from) { strlcpy(to, from != nullptr ? from : "", sizeof(to)); }

}  // namespace

namespace detail {

PendingError pending;

void CaptureCurrentException(ErrorData **pg_error) noexcept {
  try {
    throw;
  } catch (const PgError &e) {
    *pg_error = e.data();
    pending.sqlstate = 0;
  } catch (const Error &e) {
    pending.sqlstate = e.sqlstate();
    Copy(pending.message, e.what());
    Copy(pending.detail, e.detail().c_str());
    Copy(pending.hint, e.hint().c_str());
  } catch (const std::bad_alloc &) {
    pending.sqlstate = ERRCODE_OUT_OF_MEMORY;
    Copy(pending.message, "out of memory in pg_tenant");
    pending.detail[0] = pending.hint[0] = '\0';
  } catch (const std::exception &e) {
    pending.sqlstate = ERRCODE_INTERNAL_ERROR;
    Copy(pending.message, e.what());
    Copy(pending.detail, "An unexpected C++ exception reached the pg_tenant entry point.");
    pending.hint[0] = '\0';
  } catch (...) {
    pending.sqlstate = ERRCODE_INTERNAL_ERROR;
    Copy(pending.message, "unknown C++ exception in pg_tenant");
    pending.detail[0] = pending.hint[0] = '\0';
  }
}

void RaiseCaptured(ErrorData *pg_error) {
  // Every exception object and every C++ local of the body is destroyed by now.
  if (pg_error != nullptr) ReThrowError(pg_error);
  if (pending.sqlstate == 0) {  // a PgError whose ErrorData could not be copied
    pending.sqlstate = ERRCODE_OUT_OF_MEMORY;
    Copy(pending.message, "out of memory while copying a PostgreSQL error in pg_tenant");
    pending.detail[0] = pending.hint[0] = '\0';
  }
  ereport(ERROR, (errcode(pending.sqlstate), errmsg_internal("%s", pending.message),
                  pending.detail[0] ? errdetail_internal("%s", pending.detail) : 0,
                  pending.hint[0] ? errhint("%s", pending.hint) : 0));
  pg_unreachable();
}

}  // namespace detail

Datum Invoke(FunctionBody body, FunctionCallInfo fcinfo) {
  ErrorData *pg_error = nullptr;
  try {
    return body(fcinfo);
  } catch (...) {
    detail::CaptureCurrentException(&pg_error);
  }
  detail::RaiseCaptured(pg_error);
}

std::string RelationName(Oid relid) {
  return PgCall([&] {
    return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)));
  });
}

}  // namespace bridge
}  // namespace pg_tenant
