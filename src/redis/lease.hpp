// Leases of meter units (pure C++ over redis::Client): a server takes a block of units from the
// shared count with one atomic script, serves calls from it in its own shared memory and reports
// what it used and returns what it did not (meters/lease.cpp). In Redis, next to the counter
// key K (calls used, as reported), the hash K:leases holds per server the units it holds and
// field _total their sum; the limit must leave room for both, so the sum over servers of calls
// granted never passes it.
#pragma once

#include <cstdint>
#include <string>

#include "redis/client.hpp"

namespace pg_tenant::redis {

struct LeaseRequest {
  std::string key;      // the counter, K
  std::string server;   // who holds the lease (unique per life of a server's shared memory)
  int64_t consumed = 0;  // units of its lease the server used since it last reported
  int64_t released = 0;  // units of its lease it gives back unused
  int64_t amount = 0;    // the call to count now (0: only report)
  int64_t limit = -1;    // -1: unlimited (no lease is granted)
  int64_t lease_max = 0;  // most units to lease beyond amount (0: none)
  int64_t ttl_ms = 0;     // K and K:leases expire with the window (0: never)
};

struct LeaseReply {
  // kOutOfRange: the report was applied, the call not counted (its count would pass the largest
  // bigint); kFailed: nothing is known to have been applied.
  enum class Status { kCounted, kOverLimit, kOutOfRange, kFailed } status = Status::kFailed;
  int64_t used = 0;     // K after the script: calls reported used cluster-wide (this call included)
  int64_t leased = 0;   // units leased to every server and not yet reported or returned
  int64_t granted = 0;  // units leased to this server by this request, beyond amount
  std::string error;    // kFailed: why
};

// One round trip: reports consumed and released, then counts amount against the limit and
// leases up to lease_max more, sized from what the limit leaves and the servers holding leases
// (free / (2 x servers)), so leases shrink to nothing near the limit.
LeaseReply Lease(Client &client, const LeaseRequest &request);

}  // namespace pg_tenant::redis
