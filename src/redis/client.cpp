#include "redis/client.hpp"

#include <hiredis/hiredis.h>

#include <sys/time.h>

#include <cstdlib>

#include "common/cpp_only.hpp"  // last: fails the build if PostgreSQL crept in

namespace pg_tenant::redis {
namespace {

// KEYS[1] counter, KEYS[2] its leases (redis/lease.cpp: field _total holds the units leased to
// servers and not yet used or returned, which the limit must leave room for); ARGV amount, limit
// (-1: none), ttl in ms (0: none). Returns {counted, used}.
constexpr const char *kMeterScript = R"LUA(
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local leased = tonumber(redis.call('HGET', KEYS[2], '_total') or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 and used + leased + amount > limit then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], amount)
local ttl = tonumber(ARGV[3])
if ttl > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, used}
)LUA";

struct ReplyDeleter {
  void operator()(redisReply *reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval Milliseconds(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

// A SCAN MATCH pattern for the keys that start with prefix: glob characters in it are escaped.
std::string PrefixPattern(const std::string &prefix) {
  std::string pattern;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '*';
  return pattern;
}

}  // namespace

void Client::ContextDeleter::operator()(redisContext *context) const { redisFree(context); }

Client::Client() = default;
Client::~Client() = default;

void Client::Disconnect() {
  context_.reset();
  script_sha_.clear();
  script_shas_.clear();
}

bool Client::Connect(const RedisUrl &url, int connect_timeout_ms, int command_timeout_ms, std::string *error) {
  Disconnect();
  std::unique_ptr<redisContext, ContextDeleter> context(
      redisConnectWithTimeout(url.host.c_str(), url.port, Milliseconds(connect_timeout_ms)));
  if (context == nullptr) {
    *error = "cannot allocate a Redis context";
    return false;
  }
  if (context->err) {
    *error = "cannot connect to Redis at " + url.host + ":" + std::to_string(url.port) + ": " + context->errstr;
    return false;
  }
  if (redisSetTimeout(context.get(), Milliseconds(command_timeout_ms)) != REDIS_OK) {
    *error = std::string("cannot set the Redis command timeout: ") + context->errstr;
    return false;
  }
  if (!url.password.empty()) {
    Reply reply(static_cast<redisReply *>(redisCommand(context.get(), "AUTH %s", url.password.c_str())));
    if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
      *error = std::string("Redis AUTH failed: ") + (reply ? reply->str : context->errstr);
      return false;
    }
  }
  if (url.db != 0) {
    Reply reply(static_cast<redisReply *>(redisCommand(context.get(), "SELECT %d", url.db)));
    if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
      *error = "Redis SELECT " + std::to_string(url.db) + " failed: " + (reply ? reply->str : context->errstr);
      return false;
    }
  }
  context_ = std::move(context);
  if (!LoadScript(error)) {
    Disconnect();
    return false;
  }
  return true;
}

bool Client::LoadScript(std::string *error) {
  Reply reply(static_cast<redisReply *>(redisCommand(context_.get(), "SCRIPT LOAD %s", kMeterScript)));
  if (reply == nullptr || reply->type != REDIS_REPLY_STRING) {
    *error = std::string("Redis SCRIPT LOAD failed: ") + (reply ? (reply->str ? reply->str : "?") : context_->errstr);
    return false;
  }
  script_sha_.assign(reply->str, reply->len);
  return true;
}

MeterReply Client::Meter(const std::string &key, int64_t amount, int64_t limit, int64_t ttl_ms) {
  MeterReply result;
  if (!Connected()) {
    result.error = "not connected";
    return result;
  }
  const std::string a = std::to_string(amount), l = std::to_string(limit), t = std::to_string(ttl_ms);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::string leases = key + ":leases";
    Reply reply(static_cast<redisReply *>(redisCommand(context_.get(), "EVALSHA %s 2 %b %b %s %s %s", script_sha_.c_str(),
                                                       key.data(), key.size(), leases.data(), leases.size(),
                                                       a.c_str(), l.c_str(), t.c_str())));
    if (reply == nullptr) {  // I/O error or timeout: the context is unusable
      result.error = context_->errstr;
      Disconnect();
      return result;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string message(reply->str, reply->len);
      if (attempt == 0 && message.rfind("NOSCRIPT", 0) == 0) {  // the server lost its scripts
        std::string error;
        if (!LoadScript(&error)) {
          result.error = error;
          Disconnect();
          return result;
        }
        continue;
      }
      result.error = message;
      return result;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER) {
      result.error = "unexpected reply from the meter script";
      return result;
    }
    result.status = reply->element[0]->integer == 1 ? MeterReply::Status::kCounted : MeterReply::Status::kOverLimit;
    result.used = reply->element[1]->integer;
    return result;
  }
  result.error = "the meter script could not be loaded";
  return result;
}

bool Client::Add(const std::string &key, int64_t amount, int64_t ttl_ms, std::string *error) {
  MeterReply reply = Meter(key, amount, -1, ttl_ms);
  if (reply.status == MeterReply::Status::kFailed) {
    *error = reply.error;
    return false;
  }
  return true;
}

bool Client::ScanPrefix(const std::string &prefix, const char *type,
                        const std::function<bool(const redisReply *keys, std::string *error)> &each_page,
                        std::string *error) {
  if (!Connected()) {
    *error = "not connected";
    return false;
  }
  const std::string pattern = PrefixPattern(prefix);  // matched literally
  const std::string type_clause = *type != '\0' ? std::string(" TYPE ") + type : "";
  std::string cursor = "0";
  do {
    Reply page(static_cast<redisReply *>(redisCommand(context_.get(), ("SCAN %s MATCH %b COUNT 1000" + type_clause).c_str(),
                                                      cursor.c_str(), pattern.data(), pattern.size())));
    if (page == nullptr || page->type != REDIS_REPLY_ARRAY || page->elements != 2 ||
        page->element[0]->type != REDIS_REPLY_STRING || page->element[1]->type != REDIS_REPLY_ARRAY) {
      *error = page == nullptr ? std::string(context_->errstr) : "unexpected reply to SCAN";
      if (page == nullptr) Disconnect();
      return false;
    }
    cursor.assign(page->element[0]->str, page->element[0]->len);
    if (page->element[1]->elements > 0 && !each_page(page->element[1], error)) return false;
  } while (cursor != "0");
  return true;
}

bool Client::DeletePrefix(const std::string &prefix, int64_t *deleted, std::string *error) {
  *deleted = 0;
  return ScanPrefix(prefix, "", [&](const redisReply *keys, std::string *page_error) {
    for (size_t i = 0; i < keys->elements; ++i) {
      Reply unlinked(static_cast<redisReply *>(
          redisCommand(context_.get(), "UNLINK %b", keys->element[i]->str, keys->element[i]->len)));
      if (unlinked == nullptr || unlinked->type != REDIS_REPLY_INTEGER) {
        *page_error = unlinked == nullptr ? std::string(context_->errstr) : "unexpected reply to UNLINK";
        if (unlinked == nullptr) Disconnect();
        return false;
      }
      *deleted += unlinked->integer;
    }
    return true;
  }, error);
}

bool Client::Script(const char *script, const std::vector<std::string> &keys, const std::vector<std::string> &args,
                    std::vector<int64_t> *out, std::string *error) {
  out->clear();
  if (!Connected()) {
    *error = "not connected";
    return false;
  }
  std::string *sha = nullptr;
  for (auto &known : script_shas_)
    if (known.first == script) sha = &known.second;
  if (sha == nullptr) {
    script_shas_.emplace_back(script, std::string());
    sha = &script_shas_.back().second;
  }
  // EVALSHA sha numkeys keys... args...: built as an argument vector (binary safe).
  const std::string numkeys = std::to_string(keys.size());
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (sha->empty()) {
      Reply loaded(static_cast<redisReply *>(redisCommand(context_.get(), "SCRIPT LOAD %s", script)));
      if (loaded == nullptr || loaded->type != REDIS_REPLY_STRING) {
        *error = std::string("Redis SCRIPT LOAD failed: ") +
                 (loaded ? (loaded->str ? loaded->str : "?") : context_->errstr);
        if (loaded == nullptr) Disconnect();
        return false;
      }
      sha->assign(loaded->str, loaded->len);
    }
    std::vector<const char *> argv{"EVALSHA", sha->c_str(), numkeys.c_str()};
    std::vector<size_t> lengths{7, sha->size(), numkeys.size()};
    for (const auto *part : {&keys, &args})
      for (const std::string &value : *part) {
        argv.push_back(value.data());
        lengths.push_back(value.size());
      }
    Reply reply(static_cast<redisReply *>(
        redisCommandArgv(context_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (reply == nullptr) {  // I/O error or timeout: the context is unusable
      *error = context_->errstr;
      Disconnect();
      return false;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string message(reply->str, reply->len);
      if (attempt == 0 && message.rfind("NOSCRIPT", 0) == 0) {  // the server lost its scripts
        sha->clear();
        continue;
      }
      *error = message;
      return false;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
      *error = "unexpected reply from a Redis script";
      return false;
    }
    for (size_t i = 0; i < reply->elements; ++i) {
      if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
        *error = "unexpected reply from a Redis script";
        out->clear();
        return false;
      }
      out->push_back(reply->element[i]->integer);
    }
    return true;
  }
  *error = "a Redis script could not be loaded";
  return false;
}

bool Client::ValuesWithPrefix(const std::string &prefix, std::vector<std::pair<std::string, int64_t>> *out,
                              std::string *error) {
  out->clear();
  return ScanPrefix(prefix, "string", [&](const redisReply *keys, std::string *page_error) {
    std::vector<const char *> argv{"MGET"};
    std::vector<size_t> lengths{4};
    for (size_t i = 0; i < keys->elements; ++i) {
      argv.push_back(keys->element[i]->str);
      lengths.push_back(keys->element[i]->len);
    }
    Reply values(static_cast<redisReply *>(
        redisCommandArgv(context_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (values == nullptr || values->type != REDIS_REPLY_ARRAY || values->elements != keys->elements) {
      *page_error = values == nullptr ? std::string(context_->errstr) : "unexpected reply to MGET";
      if (values == nullptr) Disconnect();
      return false;
    }
    for (size_t i = 0; i < keys->elements; ++i) {
      const redisReply *value = values->element[i];
      if (value->type != REDIS_REPLY_STRING) continue;  // expired since the SCAN
      out->emplace_back(std::string(keys->element[i]->str, keys->element[i]->len),
                        std::strtoll(std::string(value->str, value->len).c_str(), nullptr, 10));
    }
    return true;
  }, error);
}

}  // namespace pg_tenant::redis
