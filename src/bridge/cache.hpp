// Backend-local caches: a memory context under CacheMemoryContext, made on first use and emptied
// on each reset, with hash tables in it. PostgreSQL calls: use inside bridge::PgCall.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::cache {

// Creates *context the first time, empties it afterwards. name must be a string literal (the
// context keeps the pointer).
void Reset(MemoryContext *context, const char *name);

// A hash table in context; flags says how keys hash (HASH_BLOBS or HASH_STRINGS).
HTAB *Table(MemoryContext context, const char *name, Size keysize, Size entrysize, int flags);

}  // namespace pg_tenant::cache
