// A hiredis client for meters: one per backend, no PostgreSQL inside (every reply and context is
// owned by a unique_ptr and freed exactly once; errors come back as values, never as a longjmp).
#pragma once

#include "redis/url.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct redisContext;
struct redisReply;

namespace pg_tenant::redis {

struct MeterReply {
  enum class Status { kCounted, kOverLimit, kFailed } status = Status::kFailed;
  int64_t used = 0;   // after counting, or the current value when over the limit
  std::string error;  // kFailed: why
};

// 0.9.0 (src/redis/once.cpp): the answer of a meter call with an idempotency key.
struct MeterOnceReply {
  MeterReply meter;       // the first call's answer (kFailed: this call failed)
  bool repeated = false;  // the key was there: nothing was counted now
  int64_t amount = 0;     // the first call's amount
  int64_t limit = -1;     // the limit the first call was counted against (-1: none)
};

class Client {
 public:
  Client();
  ~Client();
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  bool Connected() const { return context_ != nullptr; }
  // Connects with the timeouts, AUTH, SELECT db and loads the meter script. On failure the
  // client stays disconnected and *error says why.
  bool Connect(const RedisUrl &url, int connect_timeout_ms, int command_timeout_ms, std::string *error);
  void Disconnect();

  // Atomic check-and-increment of key by amount against limit (-1: unlimited); the key expires
  // ttl_ms after its first count (0: never). Units leased to servers (redis/lease.hpp, in the hash
  // key + ":leases") count against the limit too. One round trip (EVALSHA; reloads on NOSCRIPT).
  MeterReply Meter(const std::string &key, int64_t amount, int64_t limit, int64_t ttl_ms);

  // Adds counts made while Redis was unreachable (reconciliation); false on failure.
  bool Add(const std::string &key, int64_t amount, int64_t ttl_ms, std::string *error);

  // Meter, once per once_key: the first call's answer is kept in once_key for horizon_ms and a
  // repeat gets it back without counting. One round trip (EVAL).
  MeterOnceReply MeterOnce(const std::string &key, const std::string &once_key, int64_t amount, int64_t limit,
                           int64_t ttl_ms, int64_t horizon_ms);

  // 0.9.0 (src/redis/once.cpp): claims each key in one round trip (SET NX, expiring after ttl_ms;
  // 0: never); (*claimed)[i] is 1 when this call set key i, 0 when it was there. False with
  // *error on failure.
  bool Claim(const std::vector<std::string> &keys, int64_t ttl_ms, std::vector<int64_t> *claimed, std::string *error);

  // Deletes every key that starts with prefix (SCAN MATCH, then UNLINK); false on failure.
  bool DeletePrefix(const std::string &prefix, int64_t *deleted, std::string *error);

  // Runs a Lua script (by its SHA, loaded on first use and again on NOSCRIPT) whose reply is an
  // array of integers; false with *error on failure (an I/O error also disconnects).
  bool Script(const char *script, const std::vector<std::string> &keys, const std::vector<std::string> &args,
              std::vector<int64_t> *out, std::string *error);

  // Every string key that starts with prefix with its integer value (SCAN MATCH, then MGET);
  // keys holding other types are skipped. False on failure.
  bool ValuesWithPrefix(const std::string &prefix, std::vector<std::pair<std::string, int64_t>> *out,
                        std::string *error);

 private:
  struct ContextDeleter {
    void operator()(redisContext *context) const;
  };
  bool LoadScript(std::string *error);
  // Every key that starts with prefix (SCAN MATCH, of one type when type is not empty), a page
  // at a time: each_page gets the page's array of keys and returns false (with *error) to stop.
  bool ScanPrefix(const std::string &prefix, const char *type,
                  const std::function<bool(const redisReply *keys, std::string *error)> &each_page, std::string *error);
  std::unique_ptr<redisContext, ContextDeleter> context_;
  std::string script_sha_;
  std::vector<std::pair<const char *, std::string>> script_shas_;  // Script(): text -> SHA
};

}  // namespace pg_tenant::redis
