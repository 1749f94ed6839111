// Per-tenant statement counters without PostgreSQL (unit-tested): what one row of tenant.stats
// adds up, the two periods of pg_tenant.stats_period, the decaying activity score and the choice
// of the rows to evict. Nothing here allocates: the shared-memory code calls it under its locks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg_tenant::stats {

// What statements did. Times in milliseconds.
struct Counters {
  int64_t calls = 0;
  int64_t errors = 0;
  double total_time = 0;
  double max_time = 0;
  int64_t rows = 0;
  int64_t shared_blks_hit = 0;
  int64_t shared_blks_read = 0;
  int64_t shared_blks_dirtied = 0;
  int64_t temp_blks_written = 0;
  int64_t wal_bytes = 0;

  // Sums every counter; max_time keeps the greater.
  void Add(const Counters &other);
};

// Aligned periods of period_us microseconds: a period starts at a multiple of its length, so
// every backend agrees on it without talking to the others.
int64_t PeriodStart(int64_t now_us, int64_t period_us);

// The current and the previous period of one row. Rotated lazily, by whoever touches the row
// first in a new period (a statement, a reader, an eviction): no worker.
struct Periods {
  int64_t start = 0;  // of the period `current` counts
  Counters current;
  Counters previous;

  // Adds c to the period holding now.
  void Record(int64_t now_us, int64_t period_us, const Counters &c);
  // The (current, previous) periods as seen at now, without changing anything.
  void View(int64_t now_us, int64_t period_us, Counters *current_out, Counters *previous_out) const;
  // Adds another row's periods (an evicted row into "other"), both seen at now.
  void Merge(int64_t now_us, int64_t period_us, const Periods &other);

 private:
  void Advance(int64_t now_start, int64_t period_us);
};

// Activity score: grows by one per statement and halves at each period boundary, so a tenant
// that stopped working loses its place after a few periods whatever it did before.
struct Score {
  double value = 0;
  int64_t start = 0;  // the period the value is as of

  void Bump(int64_t now_us, int64_t period_us);
  double At(int64_t now_us, int64_t period_us) const;
};

// A row that may be evicted: its decayed score, when it was last used, and where it is.
struct Candidate {
  double score;
  int64_t last_seen;
  uint32_t index;
};

// Reorders candidates[0, n) so that the `count` to evict come first: the lowest scores, and
// among equal scores the least recently seen. count is clamped to n.
void ChooseEvictions(Candidate *candidates, size_t n, size_t count);

// How many rows to keep in memory for a limit: a margin over the limit, so that eviction runs
// in bulk (once per margin of new tenants), not at every new tenant.
size_t HardCapacity(size_t limit);

}  // namespace pg_tenant::stats
