// Redis leases (see lease.hpp). Why the sum over servers of granted calls never passes a limit:
// Redis grants units (a call, or a lease) only while used + leased + amount <= limit, where used
// counts the units servers reported used and leased the units they hold. A server serves calls
// only from units Redis leased to it, and each of its units is at every moment in exactly one
// place: its lease here, its unreported count here, or on the way between the two; all three are
// still in its field of the leases hash in Redis. Reports move units from leased to used, returns
// remove them; neither can make room that a call already took. A server that crashes holding a
// lease leaves its field behind: those units are lost for the window (safe: never over the limit).
// Deadlines here only decide when the worker returns a lease (fairness), never whether a unit may
// be served, so clocks need not agree.
#include "meters/lease.hpp"
#include "meters/meter.hpp"

#include <limits>

#include "bridge/bridge.hpp"
#include "redis/lease.hpp"
#include "redis/url.hpp"

#include <algorithm>
#include <vector>

namespace pg_tenant::meters::lease {
namespace {

using bridge::PgCall;

constexpr size_t kKeySize = 256;  // pg_tenant:<database>:<tenant>:<resource>:<window> fits in 200
constexpr size_t kUrlSize = 1024;

struct LeaseEntry {
  char key[kKeySize];  // the Redis counter (HASH_STRINGS): names the database, so the worker needs no OID
  pg_atomic_uint64 lease;       // units leased to this server, not yet served
  pg_atomic_uint64 consumed;    // units served here since the last report
  pg_atomic_uint64 known_used;  // the counter in Redis at the last round trip
  pg_atomic_uint64 limit;       // the limit the lease was granted under + 1 (0: unlimited)
  pg_atomic_uint64 deadline;    // TimestampTz: the worker returns the lease after it
  pg_atomic_uint64 window_end;  // TimestampTz
  pg_atomic_uint64 ttl_ms;
  pg_atomic_uint32 refills;     // round trips in flight for this entry: the worker keeps it meanwhile
  pg_atomic_uint64 seen;        // the highest count of key a call or round trip here saw (lease.hpp)
  slock_t spec_mutex;           // guards spec
  AlertSpec spec;               // written by each round trip of a backend, read by the worker
};

struct LeaseShared {
  LWLock *lock;  // guards the table's structure and the URL (shared to serve, exclusive to add or remove)
  pg_atomic_uint64 url_version;  // changes when url does
  pg_atomic_uint32 redis_down;   // the last round trip (backend or worker) failed
  pg_atomic_uint32 url_wanted;   // a session wants leases from another URL (ClaimSlot failed)
  char server[33];               // this server's name in the leases hashes: new with every shared memory
  char url[kUrlSize];            // the Redis every lease of this server came from ('' until the first)
};

LeaseShared *shared = nullptr;
HTAB *table = nullptr;

}  // namespace

int lease_max = 1000;
int lease_time_ms = 1000;

void RequestSharedMemory() noexcept {
  RequestAddinShmemSpace(MAXALIGN(sizeof(LeaseShared)) + hash_estimate_size(max_meters, sizeof(LeaseEntry)));
  RequestNamedLWLockTranche("pg_tenant leases", 1);
}

void StartSharedMemory() noexcept {
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  shared = static_cast<LeaseShared *>(ShmemInitStruct("pg_tenant leases", sizeof(LeaseShared), &found));
  if (!found) {
    shared->lock = &(GetNamedLWLockTranche("pg_tenant leases"))->lock;
    pg_atomic_init_u64(&shared->url_version, 1);
    pg_atomic_init_u32(&shared->redis_down, 0);
    pg_atomic_init_u32(&shared->url_wanted, 0);
    uint8 bytes[16];
    if (!pg_strong_random(bytes, sizeof(bytes))) {  // unique enough: the start time and the PID
      const uint64 a = static_cast<uint64>(GetCurrentTimestamp()), b = static_cast<uint64>(MyProcPid);
      memcpy(bytes, &a, 8);
      memcpy(bytes + 8, &b, 8);
    }
    for (int i = 0; i < 16; ++i) snprintf(shared->server + 2 * i, 3, "%02x", bytes[i]);
    shared->url[0] = '\0';
  }
  HASHCTL info;
  memset(&info, 0, sizeof(info));
  info.keysize = kKeySize;
  info.entrysize = sizeof(LeaseEntry);
  table = ShmemInitHash("pg_tenant lease table", max_meters, max_meters, &info, HASH_ELEM | HASH_STRINGS);
  LWLockRelease(AddinShmemInitLock);
}

namespace {

// --- which Redis: leases come from one URL per server ---------------------------------------

// Per backend: whether the session's URL is the one this server's leases come from.
uint64 cached_url_version = 0;
uint64 cached_slot_version = 0;
bool cached_match = false;

bool SlotMatches(const Session &session) {
  const uint64 slot_version = pg_atomic_read_u64(&shared->url_version);
  if (session.url_version == cached_url_version && slot_version == cached_slot_version) return cached_match;
  LWLockAcquire(shared->lock, LW_SHARED);
  cached_match = shared->url[0] != '\0' && session.url != nullptr && strcmp(shared->url, session.url) == 0;
  cached_slot_version = pg_atomic_read_u64(&shared->url_version);
  LWLockRelease(shared->lock);
  cached_url_version = session.url_version;
  return cached_match;
}

bool Holds(LeaseEntry *entry) {
  return pg_atomic_read_u64(&entry->lease) != 0 || pg_atomic_read_u64(&entry->consumed) != 0 ||
         pg_atomic_read_u32(&entry->refills) != 0;
}

// Makes the session's URL this server's lease URL when nothing is held under another one (a
// session on another Redis meanwhile counts there call by call, as without leases).
bool ClaimSlot(const Session &session) {
  if (session.url == nullptr || session.url[0] == '\0' || strlen(session.url) >= kUrlSize) return false;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  bool ok = strcmp(shared->url, session.url) == 0;
  if (!ok) {
    ok = true;
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, table);
    LeaseEntry *entry;
    while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr)
      if (Holds(entry)) ok = false;  // (the scan runs to the end: dynahash wants that)
    if (ok) {
      hash_seq_init(&status, table);
      while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr)
        hash_search(table, entry->key, HASH_REMOVE, nullptr);  // counts of the other Redis
      strlcpy(shared->url, session.url, kUrlSize);
      pg_atomic_fetch_add_u64(&shared->url_version, 1);
      pg_atomic_write_u32(&shared->url_wanted, 0);
    } else {
      pg_atomic_write_u32(&shared->url_wanted, 1);  // the worker may abandon an unreachable Redis
    }
  }
  LWLockRelease(shared->lock);
  return ok;
}

uint64 EncodedLimit(int64 limit) { return limit < 0 ? 0 : static_cast<uint64>(limit) + 1; }

// Raises entry's high-water mark to count (a CAS max); returns the mark before.
uint64 RaiseSeen(LeaseEntry *entry, uint64 count) {
  uint64 mark = pg_atomic_read_u64(&entry->seen);
  while (mark < count && !pg_atomic_compare_exchange_u64(&entry->seen, &mark, count)) {
  }
  return mark;
}

// --- the worker's connection ----------------------------------------------------------------

redis::Client worker_client;
uint64 worker_url_version = 0;
TimestampTz worker_next_attempt = 0;
int worker_backoff_ms = 0;

void WorkerFailed() {
  pg_atomic_write_u32(&shared->redis_down, 1);
  worker_backoff_ms = worker_backoff_ms == 0 ? 100 : std::min(worker_backoff_ms * 2, 5000);
  worker_next_attempt = GetCurrentTimestamp() + static_cast<TimestampTz>(worker_backoff_ms) * 1000;
}

bool WorkerConnected() {
  const uint64 version = pg_atomic_read_u64(&shared->url_version);
  if (version != worker_url_version) {
    worker_client.Disconnect();
    worker_url_version = version;
    worker_next_attempt = 0;
  }
  if (worker_client.Connected()) return true;
  if (GetCurrentTimestamp() < worker_next_attempt) return false;
  char url[kUrlSize];
  PgCall([&] {
    LWLockAcquire(shared->lock, LW_SHARED);
    strlcpy(url, shared->url, kUrlSize);
    LWLockRelease(shared->lock);
  });
  if (url[0] == '\0') return false;
  std::string error;
  auto parsed = redis::ParseRedisUrl(url, &error);
  const char *connect_timeout = GetConfigOption("pg_tenant.redis_connect_timeout", true, false);  // never ereports
  const char *command_timeout = GetConfigOption("pg_tenant.redis_command_timeout", true, false);
  if (!parsed || !worker_client.Connect(*parsed, connect_timeout ? atoi(connect_timeout) : 200,
                                        command_timeout ? atoi(command_timeout) : 200, &error)) {
    WorkerFailed();
    return false;
  }
  worker_backoff_ms = 0;
  return true;
}

}  // namespace

bool Serve(const Session &session, const std::string &key, uint64 amount, bool limited, uint64 limit, uint64 *used,
           uint64 *before) {
  if (table == nullptr || lease_max <= 0 || key.size() >= kKeySize || !SlotMatches(session)) return false;
  // Without a limit nothing is leased: calls count here while Redis answers this backend.
  if (!limited && (!session.connected || pg_atomic_read_u32(&shared->redis_down) != 0)) return false;
  return PgCall([&] {  // plain C inside: nothing can fail here but lock bookkeeping
    bool served = false;
    LWLockAcquire(shared->lock, LW_SHARED);
    auto *entry = static_cast<LeaseEntry *>(hash_search(table, key.c_str(), HASH_FIND, nullptr));
    if (entry != nullptr && pg_atomic_read_u64(&entry->limit) == (limited ? limit + 1 : 0)) {
      if (limited) {
        uint64 left = pg_atomic_read_u64(&entry->lease);
        while (left >= amount && !served)
          served = pg_atomic_compare_exchange_u64(&entry->lease, &left, left - amount);
      } else {  // far from the largest bigint, where Redis would refuse the report
        constexpr uint64 kHalf = static_cast<uint64>(PG_INT64_MAX / 2);
        served = amount <= kHalf &&
                 pg_atomic_read_u64(&entry->known_used) + pg_atomic_read_u64(&entry->consumed) <= kHalf - amount;
      }
      if (served) {
        *used = pg_atomic_read_u64(&entry->known_used) + pg_atomic_add_fetch_u64(&entry->consumed, amount);
        *before = RaiseSeen(entry, *used);
      }
    }
    LWLockRelease(shared->lock);
    return served;
  });
}

redis::MeterReply Meter(redis::Client &client, const Session &session, const std::string &key, int64 amount,
                        int64 limit, int64 ttl_ms, int64 window_end, const AlertSpec &spec, uint64 *before) {
  *before = kNoMark;
  if (table == nullptr || lease_max <= 0 || key.size() >= kKeySize ||
      !(SlotMatches(session) || PgCall([&] { return ClaimSlot(session); })))
    return client.Meter(key, amount, limit, ttl_ms);
  // This server's entry for key, kept by refills until the round trip is over; what it holds
  // goes back to Redis with the request (reported or returned), so the new lease is sized anew.
  uint64 consumed = 0, released = 0;
  LeaseEntry *entry = PgCall([&] {
    LWLockAcquire(shared->lock, LW_SHARED);
    auto *found = static_cast<LeaseEntry *>(hash_search(table, key.c_str(), HASH_FIND, nullptr));
    if (found == nullptr) {
      LWLockRelease(shared->lock);
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
      bool exists = false;
      found = hash_get_num_entries(table) < max_meters
                  ? static_cast<LeaseEntry *>(hash_search(table, key.c_str(), HASH_ENTER_NULL, &exists))
                  : nullptr;
      if (found != nullptr && !exists) {
        pg_atomic_init_u64(&found->lease, 0);
        pg_atomic_init_u64(&found->consumed, 0);
        pg_atomic_init_u64(&found->known_used, 0);
        pg_atomic_init_u64(&found->limit, EncodedLimit(limit));
        pg_atomic_init_u64(&found->deadline, 0);
        pg_atomic_init_u64(&found->window_end, static_cast<uint64>(window_end));
        pg_atomic_init_u64(&found->ttl_ms, static_cast<uint64>(ttl_ms));
        pg_atomic_init_u32(&found->refills, 0);
        pg_atomic_init_u64(&found->seen, 0);  // a new entry checks every level up to the first count
        SpinLockInit(&found->spec_mutex);
        found->spec = spec;
      }
    }
    if (found != nullptr) {
      pg_atomic_fetch_add_u32(&found->refills, 1);
      consumed = pg_atomic_exchange_u64(&found->consumed, 0);
      released = pg_atomic_exchange_u64(&found->lease, 0);
      SpinLockAcquire(&found->spec_mutex);  // the limit or its levels may have changed since
      found->spec = spec;
      SpinLockRelease(&found->spec_mutex);
    }
    LWLockRelease(shared->lock);
    return found;
  });
  if (entry == nullptr) return client.Meter(key, amount, limit, ttl_ms);  // the lease table is full
  redis::LeaseRequest request;
  request.key = key;
  request.server = shared->server;
  request.consumed = static_cast<int64>(consumed);
  request.released = static_cast<int64>(released);
  request.amount = amount;
  request.limit = limit;
  request.lease_max = limit < 0 ? 0 : lease_max;
  request.ttl_ms = ttl_ms;
  const redis::LeaseReply reply = redis::Lease(client, request);
  uint64 refused_seen_was = std::numeric_limits<uint64>::max();  // set when a refusal raised the mark
  redis::MeterReply result;
  result.error = reply.error;
  // The entry stays (refills > 0), so no lock is needed to move its atomics.
  if (reply.status == redis::LeaseReply::Status::kFailed) {
    pg_atomic_fetch_add_u64(&entry->consumed, consumed);  // still held in Redis: report them later
    pg_atomic_fetch_add_u64(&entry->lease, released);
    pg_atomic_write_u32(&shared->redis_down, 1);
  } else {
    pg_atomic_write_u32(&shared->redis_down, 0);
    pg_atomic_write_u64(&entry->limit, EncodedLimit(limit));
    pg_atomic_write_u64(&entry->known_used, static_cast<uint64>(reply.used));
    pg_atomic_write_u64(&entry->deadline, static_cast<uint64>(GetCurrentTimestamp() + lease_time_ms * INT64CONST(1000)));
    pg_atomic_fetch_add_u64(&entry->lease, static_cast<uint64>(reply.granted));
    result.status = reply.status == redis::LeaseReply::Status::kCounted     ? redis::MeterReply::Status::kCounted
                    : reply.status == redis::LeaseReply::Status::kOverLimit ? redis::MeterReply::Status::kOverLimit
                                                                            : redis::MeterReply::Status::kFailed;
    // Refused: the count the call found, leases included (they hold units of the limit too).
    result.used = reply.status == redis::LeaseReply::Status::kCounted ? reply.used : reply.used + reply.leased;
    // Counted: the call checks the levels its count passed. Refused, its report may still have
    // brought Redis's count past a level: checked here, as the worker does (no call comes after).
    if (reply.status == redis::LeaseReply::Status::kCounted) {
      *before = RaiseSeen(entry, static_cast<uint64>(reply.used));
    } else if (reply.status == redis::LeaseReply::Status::kOverLimit && spec.alert_count > 0) {
      refused_seen_was = RaiseSeen(entry, static_cast<uint64>(reply.used));
    }
  }
  pg_atomic_fetch_sub_u32(&entry->refills, 1);
  // After the entry is let go: recording may raise (an allocation), and must not leave it pinned.
  if (refused_seen_was < static_cast<uint64>(reply.used) && reply.status == redis::LeaseReply::Status::kOverLimit)
    RecordReportedCrossings(spec, key, refused_seen_was, static_cast<uint64>(reply.used), client);
  return result;
}

int TickMs(int flush_interval_ms) {
  if (table == nullptr) return flush_interval_ms;
  return std::max(5, std::min(flush_interval_ms, lease_time_ms / 2));
}

namespace {
bool returning_all = false;
}  // namespace

void WorkerShutdown() {
  returning_all = true;
  WorkerTick();
}

void WorkerTick() {
  if (table == nullptr) return;
  bridge::Guarded([] {
    struct Work {
      std::string key;
      bool expired;
    };
    std::vector<Work> work;
    bool removable = false;  // an entry holds nothing and its lease or window is over
    const TimestampTz now = GetCurrentTimestamp();
    PgCall([&] {
      LWLockAcquire(shared->lock, LW_SHARED);
      HASH_SEQ_STATUS status;
      hash_seq_init(&status, table);
      LeaseEntry *entry;
      while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr) {
        const bool expired = returning_all || static_cast<int64>(pg_atomic_read_u64(&entry->deadline)) <= now ||
                             static_cast<int64>(pg_atomic_read_u64(&entry->window_end)) <= now;
        if (pg_atomic_read_u64(&entry->consumed) != 0 || (expired && pg_atomic_read_u64(&entry->lease) != 0))
          work.push_back({entry->key, expired});
        else if (expired && !Holds(entry))
          removable = true;
      }
      LWLockRelease(shared->lock);
    });
    struct Crossing {  // a report that raised an entry's mark: its levels are checked after the loop
      std::string key;
      AlertSpec spec;
      uint64 before, after;
    };
    std::vector<Crossing> crossings;
    bool unreachable = !work.empty() && !WorkerConnected();
    if (!work.empty() && !unreachable) {
      for (const Work &w : work) {
        uint64 consumed = 0, released = 0;
        redis::LeaseRequest request;
        LeaseEntry *entry = PgCall([&] {
          LWLockAcquire(shared->lock, LW_SHARED);
          auto *found = static_cast<LeaseEntry *>(hash_search(table, w.key.c_str(), HASH_FIND, nullptr));
          if (found != nullptr) {
            pg_atomic_fetch_add_u32(&found->refills, 1);
            consumed = pg_atomic_exchange_u64(&found->consumed, 0);
            if (w.expired) released = pg_atomic_exchange_u64(&found->lease, 0);
            const uint64 limit = pg_atomic_read_u64(&found->limit);
            request.limit = limit == 0 ? -1 : static_cast<int64>(limit - 1);
            request.ttl_ms = static_cast<int64>(pg_atomic_read_u64(&found->ttl_ms));
          }
          LWLockRelease(shared->lock);
          return found;
        });
        if (entry == nullptr) continue;
        request.key = w.key;
        request.server = shared->server;
        request.consumed = static_cast<int64>(consumed);
        request.released = static_cast<int64>(released);
        const redis::LeaseReply reply = redis::Lease(worker_client, request);
        if (reply.status == redis::LeaseReply::Status::kFailed) {
          pg_atomic_fetch_add_u64(&entry->consumed, consumed);
          pg_atomic_fetch_add_u64(&entry->lease, released);
          pg_atomic_fetch_sub_u32(&entry->refills, 1);
          if (worker_client.Connected()) {  // Redis answered with an error: the others may still go
            PgCall([&] {
              ereport(LOG, (errmsg("pg_tenant could not report meter key \"%s\" to Redis: %s", w.key.c_str(),
                                   reply.error.c_str())));
            });
            continue;
          }
          WorkerFailed();
          unreachable = true;
          break;  // the rest waits for the next tick
        }
        pg_atomic_write_u32(&shared->redis_down, 0);
        pg_atomic_write_u64(&entry->known_used, static_cast<uint64>(reply.used));
        // Redis's count, every server's reports in: a level crossed there and by no call's view
        // here is found now (the one report after the last call does it).
        const uint64 before = RaiseSeen(entry, static_cast<uint64>(reply.used));
        if (static_cast<uint64>(reply.used) > before) {
          Crossing crossing{w.key, {}, before, static_cast<uint64>(reply.used)};
          SpinLockAcquire(&entry->spec_mutex);
          crossing.spec = entry->spec;
          SpinLockRelease(&entry->spec_mutex);
          if (crossing.spec.alert_count > 0) crossings.push_back(crossing);
        }
        pg_atomic_fetch_sub_u32(&entry->refills, 1);
      }
    }
    for (const Crossing &c : crossings) RecordReportedCrossings(c.spec, c.key, c.before, c.after, worker_client);
    // Sessions now use another Redis and this one cannot be reached: once every lease has
    // expired, its entries are abandoned (their units stay leased there until their windows end;
    // calls not reported yet are lost to it) so that leases come from the new one.
    const bool abandon = unreachable && pg_atomic_read_u32(&shared->url_wanted) != 0;
    // Entries that hold nothing and whose lease or window is over go (the next call leases anew);
    // the exclusive lock only when there may be some.
    if (!removable && work.empty() && !abandon) return;
    PgCall([&] {
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
      if (abandon) {
        bool all_over = true;
        HASH_SEQ_STATUS status;
        hash_seq_init(&status, table);
        LeaseEntry *entry;
        while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr)
          if (static_cast<int64>(pg_atomic_read_u64(&entry->deadline)) > now || pg_atomic_read_u32(&entry->refills) != 0)
            all_over = false;
        if (all_over) {
          hash_seq_init(&status, table);
          while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr)
            hash_search(table, entry->key, HASH_REMOVE, nullptr);
          shared->url[0] = '\0';
          pg_atomic_fetch_add_u64(&shared->url_version, 1);
          pg_atomic_write_u32(&shared->url_wanted, 0);
          ereport(LOG, (errmsg("pg_tenant abandoned its meter leases of an unreachable Redis: sessions use another")));
        }
      }
      HASH_SEQ_STATUS status;
      hash_seq_init(&status, table);
      LeaseEntry *entry;
      while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr) {
        const bool over = static_cast<int64>(pg_atomic_read_u64(&entry->deadline)) <= now ||
                          static_cast<int64>(pg_atomic_read_u64(&entry->window_end)) <= now;
        if (over && !Holds(entry)) hash_search(table, entry->key, HASH_REMOVE, nullptr);
      }
      LWLockRelease(shared->lock);
    });
  });
}

uint64 Unreported(const std::string &key) {
  if (table == nullptr || key.size() >= kKeySize) return 0;
  return PgCall([&] {
    uint64 n = 0;
    LWLockAcquire(shared->lock, LW_SHARED);
    auto *entry = static_cast<LeaseEntry *>(hash_search(table, key.c_str(), HASH_FIND, nullptr));
    if (entry != nullptr) n = pg_atomic_read_u64(&entry->consumed);
    LWLockRelease(shared->lock);
    return n;
  });
}

void Forget(const std::string &prefix) {
  if (table == nullptr) return;
  PgCall([&] {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, table);
    LeaseEntry *entry;
    while ((entry = static_cast<LeaseEntry *>(hash_seq_search(&status))) != nullptr)
      if (strncmp(entry->key, prefix.c_str(), prefix.size()) == 0 && pg_atomic_read_u32(&entry->refills) == 0)
        hash_search(table, entry->key, HASH_REMOVE, nullptr);
    LWLockRelease(shared->lock);
  });
}

}  // namespace pg_tenant::meters::lease
