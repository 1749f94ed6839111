#include "bridge/cache.hpp"

namespace pg_tenant::cache {

void Reset(MemoryContext *context, const char *name) {
  if (*context == nullptr)
    *context = AllocSetContextCreateInternal(CacheMemoryContext, name, ALLOCSET_SMALL_SIZES);
  else
    MemoryContextReset(*context);
}

HTAB *Table(MemoryContext context, const char *name, Size keysize, Size entrysize, int flags) {
  HASHCTL ctl;
  memset(&ctl, 0, sizeof(ctl));
  ctl.keysize = keysize;
  ctl.entrysize = entrysize;
  ctl.hcxt = context;
  return hash_create(name, 64, &ctl, HASH_ELEM | HASH_CONTEXT | flags);
}

}  // namespace pg_tenant::cache
