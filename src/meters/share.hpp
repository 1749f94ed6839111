// The share rule (DESIGN.md, "Who runs what": every shared table has a per-tenant share), one
// definition for both shared tables that have one: the meter counters (meters/store.cpp) and the
// idempotency keys (meters/keys.cpp). Beside each table a share hash counts the entries each
// (database, tenant) holds in it, so that no tenant can fill the table for the others.
//
// Locking: a share hash is guarded by its table's LWLock, held exclusively by the caller of every
// function here (the meters' lock for the meter shares, the keys' lock for the key shares). Inline:
// the keyed call path runs them under the keys' lock, and they cost what they did in one file.
#pragma once

#include "bridge/pg.hpp"

namespace pg_tenant::meters {

struct ShareKey {  // hashed as bytes: always fully zeroed before filling
  Oid database;
  pg_uuid_t tenant;
};

struct ShareEntry {
  ShareKey key;
  int32 entries;
};

// The share of the tenant a table's key belongs to (MeterKey, OnceKey: database and tenant).
template <typename Key>
inline ShareKey ShareOf(const Key &key) {
  ShareKey share;
  memset(&share, 0, sizeof(share));
  share.database = key.database;
  share.tenant = key.tenant;
  return share;
}

// The tenant holds `most` entries or more.
inline bool ShareFull(HTAB *shares, const ShareKey &tenant, int most) {
  auto *share = static_cast<ShareEntry *>(hash_search(shares, &tenant, HASH_FIND, nullptr));
  return share != nullptr && share->entries >= most;
}

// An entry of the tenant was added to the table.
inline void TakeShare(HTAB *shares, const ShareKey &tenant) {
  bool found;
  auto *share = static_cast<ShareEntry *>(hash_search(shares, &tenant, HASH_ENTER_NULL, &found));
  if (share == nullptr) return;  // as many shares as entries: cannot happen
  if (!found) share->entries = 0;
  ++share->entries;
}

// An entry of the tenant was removed from the table.
inline void GiveShareBack(HTAB *shares, const ShareKey &tenant) {
  auto *share = static_cast<ShareEntry *>(hash_search(shares, &tenant, HASH_FIND, nullptr));
  if (share != nullptr && --share->entries <= 0) hash_search(shares, &tenant, HASH_REMOVE, nullptr);
}

}  // namespace pg_tenant::meters
