#include "bridge/spi.hpp"

namespace pg_tenant::spi {

using bridge::PgCall;

Session::Session() {
  PgCall([] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  });
  open_ = true;
}

void Session::Finish() {
  if (!open_) return;
  open_ = false;
  PgCall([] { SPI_finish(); });
}

std::vector<Row> Session::Query(const std::string &sql, const std::vector<Param> &params) {
  std::vector<Oid> types;
  std::vector<Datum> values;
  for (const auto &p : params) {
    types.push_back(p.type);
    values.push_back(p.value);
  }
  const int ncolumns = PgCall([&] {
    int rc = SPI_execute_with_args(sql.c_str(), static_cast<int>(params.size()), types.data(), values.data(),
                                   nullptr, false, 0);
    if (rc < 0) elog(ERROR, "SPI_execute_with_args failed (%d): %s", rc, sql.c_str());
    return SPI_tuptable != nullptr ? SPI_tuptable->tupdesc->natts : 0;
  });
  std::vector<Row> rows;
  const uint64 nrows = SPI_tuptable != nullptr ? SPI_processed : 0;
  for (uint64 r = 0; r < nrows; ++r) {
    Row row;
    for (int c = 1; c <= ncolumns; ++c) {
      char *text = PgCall([&] { return SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c); });
      row.push_back(text != nullptr ? Value(text) : std::nullopt);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void Session::Execute(const std::string &sql, const std::vector<Param> &params) { (void)Query(sql, params); }

Datum TextParam(const std::string &value) {
  return PgCall([&] { return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size()))); });
}

AsRole::AsRole(Oid role) {
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(role, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

AsRole::~AsRole() { SetUserIdAndSecContext(saved_user_, saved_context_); }

}  // namespace pg_tenant::spi
