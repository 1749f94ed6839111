// Idempotency keys (0.9.0) in shared memory: tenant.meter(resource, amount, key) counts a key's
// first call once and gives every repeat the first call's answer. Written in keys.cpp (its head
// comment has the locking); the Redis backend keeps its keys in Redis (redis_backend.cpp).
#pragma once

#include <string_view>

#include "bridge/bridge.hpp"
#include "meters/store.hpp"

namespace pg_tenant::meters::keys {

constexpr size_t kMostKeyBytes = 64;  // an idempotency key has 1 to 64 bytes

// The keys' share of the meters' shared memory (store.cpp requests and starts it): the size, and
// the tables attached under AddinShmemInitLock with the keys' LWLock.
Size SharedSize();
void AttachSharedMemory(LWLock *lock) noexcept;

// The third argument of a keyed call: 1 to 64 bytes (errors before any count).
std::string_view IdempotencyKey(FunctionCallInfo fcinfo);

// A keyed call in shared memory: the key's first call counts (store::CountIn), a repeat gets its
// answer (*repeated).
store::Count CountOnce(const store::MeterKey &key, std::string_view idempotency_key, limits::Period period,
                       uint64 amount, bool hard, uint64 limit, bool *repeated);

// A repeat that asks for another amount than the key's first call (either backend).
Error AmountDiffers(int64 first, int64 now);

}  // namespace pg_tenant::meters::keys
