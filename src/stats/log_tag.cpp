// pg_tenant.log_tenant: the tenant on server log lines (an emit_log_hook, chained).
//
// The tag goes where only the server log reads it: the entry's server-only detail (detail_log,
// PostgreSQL's errdetail_log), printed as a "DETAIL:  tenant=acme" line of the same entry (and
// the detail field of csvlog and jsonlog). So the client's message, detail, hint and context are
// never changed, and the message text in the log stays what log analysers (pgBadger: "duration:
// ... ms  statement: ...") expect. With log_error_verbosity = terse the server log has no DETAIL
// lines: entries that go to the server log only (LOG: the statement and duration logs) get the
// tag as a prefix of their message there ("tenant=acme: duration: ..."); entries that also go to
// the client are left untagged.
//
// The hook must never fail: it takes no lock, reads no table (the slug comes from the backend's
// tenant cache, else the id is written), allocates with MCXT_ALLOC_NO_OOM (no room: no tag) and
// runs no C++ that could throw.
#include "bridge/pg.hpp"
#include "bridge/settings.hpp"
#include "common/uuid_text.hpp"
#include "context/context.hpp"
#include "registry/registry.hpp"
#include "stats/stats.hpp"

namespace pg_tenant::stats {

int log_tenant = kLogOff;  // pg_tenant.log_tenant (registered in src/wiring/settings.cpp)

namespace {

constexpr char kTag[] = "tenant=";

// "<head><separator>tenant=<value><tail>" in the current memory context (the entry's), or nullptr.
char *Tagged(const char *head, const char *separator, const char *value, const char *tail) noexcept {
  const size_t size = strlen(head) + strlen(separator) + strlen(kTag) + strlen(value) + strlen(tail) + 1;
  auto *text = static_cast<char *>(MemoryContextAllocExtended(CurrentMemoryContext, size, MCXT_ALLOC_NO_OOM));
  if (text != nullptr) snprintf(text, size, "%s%s%s%s%s", head, separator, kTag, value, tail);
  return text;
}

}  // namespace

void TagLogEntry(ErrorData *edata) noexcept {
  // A reload that changes a secret setting must not print it (bridge/settings.hpp).
  if (char *masked = bridge::MaskedSecretMessage(edata)) edata->message = masked;
  if (log_tenant == kLogOff || !edata->output_to_server) return;
  const pg_uuid_t *tenant = context::UnvalidatedTenant();
  if (tenant == nullptr) tenant = StatementTenant();
  if (tenant == nullptr) return;
  char value[registry::kNameBufferSize];
  if (log_tenant != kLogSlug || !registry::CachedSlug(*tenant, value)) {
    UuidBytes bytes;
    memcpy(bytes.data(), tenant->data, UUID_LEN);
    FormatUuid(bytes, value);
  }
  if (Log_error_verbosity == PGERROR_TERSE) {
    if (edata->output_to_client || edata->message == nullptr) return;
    char *message = Tagged("", "", value, ": ");
    if (message == nullptr) return;
    const size_t size = strlen(message) + strlen(edata->message) + 1;
    auto *with_message = static_cast<char *>(MemoryContextAllocExtended(CurrentMemoryContext, size, MCXT_ALLOC_NO_OOM));
    if (with_message != nullptr) {
      snprintf(with_message, size, "%s%s", message, edata->message);
      pfree(edata->message);
      edata->message = with_message;
    }
    pfree(message);
    return;
  }
  // The server log prints detail_log instead of detail: keep the detail the client sees there too.
  const char *detail = edata->detail_log != nullptr ? edata->detail_log : edata->detail;
  char *tagged = detail != nullptr ? Tagged(detail, "\n", value, "") : Tagged("", "", value, "");
  if (tagged == nullptr) return;
  if (edata->detail_log != nullptr) pfree(edata->detail_log);
  edata->detail_log = tagged;
}

}  // namespace pg_tenant::stats
