// The transaction's ledger of row counts (issue 15): what makes an exact row quota cost per
// transaction, not per statement.
//
// The first time a transaction touches a (resource, tenant) counter, it finds the counter's row
// in tenant.row_counts by its key and locks it (FOR NO KEY UPDATE, waiting for a transaction that
// holds it and then following its update to the latest version): the count read then is the
// committed one, and no other transaction can change it before this one ends. Every statement
// after that checks its limit against that count plus the transaction's own deltas, in memory,
// without SQL. The deltas are written once, just before commit (XACT_EVENT_PRE_COMMIT, or
// PRE_PREPARE for PREPARE TRANSACTION), as one update of each counter's row. A subtransaction
// that aborts takes its part back (every change of the ledger is undone to the state it had
// when the subtransaction began, as PostgreSQL undoes the rows and the locks). A statement that
// reads or writes tenant.row_counts in the writing transaction first gets the pending deltas
// written (ExecutorStart), so it reads what the transaction has counted so far, and a statement
// that may write the counts (a recount, a tenant's deletion) makes the ledger read them again.
#pragma once

#include <map>
#include <string>

#include "bridge/pg.hpp"
#include "common/uuid_text.hpp"

namespace pg_tenant::quotas {

// Per tenant, the change of its row count; ordered as PostgreSQL orders uuids (bytewise), so that
// every statement locks counters in the same order.
using Deltas = std::map<UuidBytes, int64>;

// The transaction callbacks (registered in src/wiring/hooks.cpp): the counts written before
// commit, undone per subtransaction.
void OnXactEvent(XactEvent event, void *arg) noexcept;
void OnSubXactEvent(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void *arg) noexcept;

// The executor door's step (src/executor/door.cpp): a statement of a transaction whose counts are
// pending and that reads tenant.row_counts sees them written first.
void BeforeStatement(QueryDesc *query, int eflags) noexcept;

// Adds one statement's deltas to a resource's counters. With enforce, a tenant whose count would
// pass its limit raises TN006 (the tenant in context first, so an error shows the writing
// tenant's own numbers) and nothing of the statement is counted. A decrement of a counter that
// does not exist does nothing (a tenant being deleted may have lost its counter already).
void Apply(const std::string &resource, const Deltas &deltas, bool enforce);

}  // namespace pg_tenant::quotas
