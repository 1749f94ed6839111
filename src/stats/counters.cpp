#include "stats/counters.hpp"

#include <algorithm>
#include <cmath>

#include "common/cpp_only.hpp"

namespace pg_tenant::stats {

void Counters::Add(const Counters &other) {
  calls += other.calls;
  errors += other.errors;
  total_time += other.total_time;
  max_time = std::max(max_time, other.max_time);
  rows += other.rows;
  shared_blks_hit += other.shared_blks_hit;
  shared_blks_read += other.shared_blks_read;
  shared_blks_dirtied += other.shared_blks_dirtied;
  temp_blks_written += other.temp_blks_written;
  wal_bytes += other.wal_bytes;
}

int64_t PeriodStart(int64_t now_us, int64_t period_us) {
  if (period_us <= 0) return now_us;
  int64_t offset = now_us % period_us;
  if (offset < 0) offset += period_us;  // before 2000-01-01 (PostgreSQL's epoch)
  return now_us - offset;
}

void Periods::Advance(int64_t now_start, int64_t period_us) {
  if (now_start == start) return;
  if (now_start == start + period_us)
    previous = current;
  else
    previous = Counters();  // more than one period passed (or the period length changed)
  current = Counters();
  start = now_start;
}

void Periods::Record(int64_t now_us, int64_t period_us, const Counters &c) {
  // Most statements fall in the period of the one before: no division then.
  if (now_us < start || now_us - start >= period_us) {
    const int64_t now_start = PeriodStart(now_us, period_us);
    if (now_start > start) Advance(now_start, period_us);
  }
  current.Add(c);  // a clock that went back counts in the newest period there is
}

void Periods::View(int64_t now_us, int64_t period_us, Counters *current_out, Counters *previous_out) const {
  const int64_t now_start = PeriodStart(now_us, period_us);
  if (now_start <= start) {
    *current_out = current;
    *previous_out = previous;
  } else if (now_start == start + period_us) {
    *current_out = Counters();
    *previous_out = current;
  } else {
    *current_out = Counters();
    *previous_out = Counters();
  }
}

void Periods::Merge(int64_t now_us, int64_t period_us, const Periods &other) {
  Counters other_current, other_previous;
  other.View(now_us, period_us, &other_current, &other_previous);
  const int64_t now_start = PeriodStart(now_us, period_us);
  if (now_start > start) Advance(now_start, period_us);
  current.Add(other_current);
  previous.Add(other_previous);
}

namespace {
double Decayed(double value, int64_t from_start, int64_t now_start, int64_t period_us) {
  if (now_start <= from_start || period_us <= 0) return value;
  const int64_t periods = (now_start - from_start) / period_us;
  return periods >= 64 ? 0 : std::ldexp(value, -static_cast<int>(periods));
}
}  // namespace

void Score::Bump(int64_t now_us, int64_t period_us) {
  if (now_us >= start && now_us - start < period_us) {  // the same period: no decay to apply
    value += 1;
    return;
  }
  const int64_t now_start = PeriodStart(now_us, period_us);
  value = Decayed(value, start, now_start, period_us) + 1;
  if (now_start > start) start = now_start;
}

double Score::At(int64_t now_us, int64_t period_us) const {
  return Decayed(value, start, PeriodStart(now_us, period_us), period_us);
}

void ChooseEvictions(Candidate *candidates, size_t n, size_t count) {
  if (count == 0 || n == 0) return;
  if (count > n) count = n;
  auto lower = [](const Candidate &a, const Candidate &b) {
    if (a.score != b.score) return a.score < b.score;
    if (a.last_seen != b.last_seen) return a.last_seen < b.last_seen;
    return a.index < b.index;
  };
  if (count < n) std::nth_element(candidates, candidates + count - 1, candidates + n, lower);
}

size_t HardCapacity(size_t limit) { return limit + std::max<size_t>(limit / 4, 8); }

}  // namespace pg_tenant::stats
