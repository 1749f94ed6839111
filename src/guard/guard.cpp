#include "guard/guard.hpp"

#include "bridge/pg.hpp"

namespace pg_tenant::guard {
namespace {

char *guarded_schemas = nullptr;

}  // namespace

void Init() {
  DefineCustomStringVariable("pg_tenant.guarded_schemas",
                             "Schemas where every table must have the tenant column or be exempted.",
                             "A comma-separated list of schema names. tenant.audit() reports tables there that "
                             "have no tenant column and no exemption.",
                             &guarded_schemas, "public", PGC_SUSET, GUC_LIST_INPUT, nullptr, nullptr, nullptr);
}

}  // namespace pg_tenant::guard
