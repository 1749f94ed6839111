// The statistics file (pg_stat/pg_tenant_stats.stat): the rows saved at a clean shutdown and
// loaded (and removed) when shared memory is made next; after a crash there is no file, and a
// damaged one is skipped and removed. A header (magic, format, server version, row size, count),
// the rows as they are in shared memory, a CRC-32C of both.
//
// Locking: none. The postmaster (or a single-user backend) writes it from an on_shmem_exit
// callback, when every other process has exited, and reads it in the shmem startup hook before
// any backend runs. Plain C: failures are logged, never raised.
#include "stats/store.hpp"

namespace pg_tenant::stats {
namespace {

constexpr const char *kFile = PGSTAT_STAT_PERMANENT_DIRECTORY "/pg_tenant_stats.stat";
constexpr const char *kTempFile = PGSTAT_STAT_PERMANENT_DIRECTORY "/pg_tenant_stats.stat.tmp";
constexpr uint32 kFileMagic = 0x50544E53;  // "PTNS"
constexpr uint32 kFileFormat = 1;

struct FileHeader {
  uint32 magic;
  uint32 format;
  uint32 server_version;
  uint32 row_size;
  int64 rows;
};

// Whether the control file says the server shut down cleanly (a shutdown checkpoint was
// written). An immediate shutdown ends the postmaster with exit code 0 too, after its children
// were killed wherever they were, possibly in the middle of changing the table: the code alone
// cannot tell. Plain reads, nothing raised.
bool ShutDownCleanly() noexcept {
  ControlFileData control;
  const int fd = open(XLOG_CONTROL_FILE, O_RDONLY | PG_BINARY, 0);
  if (fd < 0) return false;
  const ssize_t n = read(fd, &control, sizeof(control));
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(control))) return false;
  pg_crc32c crc;
  INIT_CRC32C(crc);
  COMP_CRC32C(crc, &control, offsetof(ControlFileData, crc));
  FIN_CRC32C(crc);
  return EQ_CRC32C(crc, control.crc) && (control.state == DB_SHUTDOWNED || control.state == DB_SHUTDOWNED_IN_RECOVERY);
}

}  // namespace

// Postmaster (or single-user backend) at clean shutdown: every other process has exited, so no
// lock is needed. Plain C: writes a .tmp, then renames it; failures are logged, never raised.
void SaveFile(int code, Datum) noexcept {
  // A crash or an immediate shutdown: nothing is saved (and there is no file: loading removed it).
  if (code != 0 || shared == nullptr || !ShutDownCleanly()) return;
  FILE *file = AllocateFile(kTempFile, PG_BINARY_W);
  if (file == nullptr) {
    ereport(LOG, (errcode_for_file_access(), errmsg("could not write file \"%s\": %m", kTempFile)));
    return;
  }
  FileHeader header = {kFileMagic, kFileFormat, PG_VERSION_NUM, sizeof(Row), hash_get_num_entries(table)};
  pg_crc32c crc;
  INIT_CRC32C(crc);
  COMP_CRC32C(crc, &header, sizeof(header));
  bool ok = fwrite(&header, sizeof(header), 1, file) == 1;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, table);
  StatsEntry *entry;
  while ((entry = static_cast<StatsEntry *>(hash_seq_search(&status))) != nullptr) {
    COMP_CRC32C(crc, &entry->row, sizeof(Row));
    if (ok) ok = fwrite(&entry->row, sizeof(Row), 1, file) == 1;
  }
  FIN_CRC32C(crc);
  if (ok) ok = fwrite(&crc, sizeof(crc), 1, file) == 1;
  if (FreeFile(file) != 0) ok = false;
  if (!ok) {
    ereport(LOG, (errcode_for_file_access(), errmsg("could not write file \"%s\": %m", kTempFile)));
    unlink(kTempFile);
    return;
  }
  (void)durable_rename(kTempFile, kFile, LOG);
}

// Postmaster, when shared memory is made: the rows saved at the last clean shutdown. The whole
// file is read and its checksum verified before any row is used; the file is removed after, so
// that a crash later finds none (its counters would be from before the crash).
void LoadFile() {
  FILE *file = AllocateFile(kFile, PG_BINARY_R);
  if (file == nullptr) {
    if (errno != ENOENT)
      ereport(LOG, (errcode_for_file_access(), errmsg("could not read file \"%s\": %m", kFile)));
    return;
  }
  FileHeader header;
  Row *rows = nullptr;
  bool ok = fread(&header, sizeof(header), 1, file) == 1 && header.magic == kFileMagic &&
            header.format == kFileFormat && header.server_version == PG_VERSION_NUM && header.row_size == sizeof(Row) &&
            header.rows >= 0 && header.rows <= 100000000;
  if (ok) {
    rows = static_cast<Row *>(MemoryContextAllocExtended(CurrentMemoryContext, Max(header.rows, 1) * sizeof(Row),
                                                         MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM));
    ok = rows != nullptr && fread(rows, sizeof(Row), header.rows, file) == static_cast<size_t>(header.rows);
  }
  pg_crc32c stored;
  if (ok) ok = fread(&stored, sizeof(stored), 1, file) == 1 && fgetc(file) == EOF;
  if (ok) {
    pg_crc32c crc;
    INIT_CRC32C(crc);
    COMP_CRC32C(crc, &header, sizeof(header));
    COMP_CRC32C(crc, rows, header.rows * sizeof(Row));
    FIN_CRC32C(crc);
    ok = EQ_CRC32C(crc, stored);
  }
  FreeFile(file);
  if (!ok) {
    ereport(LOG, (errmsg("pg_tenant: skipped the damaged statistics file \"%s\"", kFile),
                  errdetail("The per-tenant statistics start from zero.")));
  } else {
    const TimestampTz now = GetCurrentTimestamp();
    for (int64 i = 0; i < header.rows; ++i) {
      Row &saved = rows[i];
      if (saved.key.kind > kUnregistered) continue;
      bool found;
      StatsEntry *entry = EnterRow(saved.key, now, &found);  // a smaller limit now: evicts as it goes
      if (entry == nullptr) continue;
      if (found) {  // "other" made by an eviction of this load
        entry->row.total.Add(saved.total);
        entry->row.periods.Merge(now, PeriodUs(), saved.periods);
        entry->row.first_seen = Min(entry->row.first_seen, saved.first_seen);
        entry->row.last_seen = Max(entry->row.last_seen, saved.last_seen);
      } else {
        entry->row = saved;
        entry->row.key = entry->key;
      }
    }
  }
  if (rows != nullptr) pfree(rows);
  unlink(kFile);
}

}  // namespace pg_tenant::stats
