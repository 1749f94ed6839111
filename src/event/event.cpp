#include "event/event.hpp"

#include "catalog/catalog.hpp"

#include <algorithm>

namespace pg_tenant::ddl {
namespace {

using bridge::PgCall;

// The table a CREATE creates, looked up where the command put it: not through search_path,
// which may find a temporary table of the same name first.
Oid CreatedRelation(RangeVar *relation) {
  Oid schema = RangeVarGetCreationNamespace(relation);
  return get_relname_relid(relation->relname, schema);
}

}  // namespace

Event::Event(FunctionCallInfo fcinfo) {
  if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "the pg_tenant DDL door must be called as an event trigger");
  data_ = reinterpret_cast<EventTriggerData *>(fcinfo->context);
  is_drop_ = strcmp(data_->event, "sql_drop") == 0;
  if (is_drop_ || data_->parsetree == nullptr) return;
  Node *tree = data_->parsetree;
  PgCall([&] {
    switch (nodeTag(tree)) {
      case T_CreateStmt: {
        auto *create = reinterpret_cast<CreateStmt *>(tree);
        created_relid_ = CreatedRelation(create->relation);
        creates_child_ = create->inhRelations != NIL || create->partbound != nullptr;
        break;
      }
      case T_CreateTableAsStmt: {
        // A table, or a materialized view (whose query the guard follows).
        auto *create = reinterpret_cast<CreateTableAsStmt *>(tree);
        created_relid_ = CreatedRelation(create->into->rel);
        break;
      }
      case T_AlterTableStmt: {
        auto *alter = reinterpret_cast<AlterTableStmt *>(tree);
        names_altered_table_ = true;
        altered_relid_ = RangeVarGetRelid(alter->relation, NoLock, true);
        ListCell *cell;
        foreach (cell, alter->cmds) {
          auto *command = static_cast<AlterTableCmd *>(lfirst(cell));
          switch (command->subtype) {
            case AT_AttachPartition:
              links_child_ = true;
              linked_.emplace_back(
                  altered_relid_, RangeVarGetRelid(reinterpret_cast<PartitionCmd *>(command->def)->name, NoLock, true));
              break;
            case AT_AddInherit:
              links_child_ = true;
              linked_.emplace_back(RangeVarGetRelid(reinterpret_cast<RangeVar *>(command->def), NoLock, true),
                                   altered_relid_);
              break;
            case AT_DetachPartition:
            case AT_DetachPartitionFinalize:
              unlinked_.push_back(RangeVarGetRelid(reinterpret_cast<PartitionCmd *>(command->def)->name, NoLock, true));
              break;
            case AT_DropInherit:
              unlinked_.push_back(altered_relid_);
              break;
            case AT_DropColumn:
            case AT_AlterColumnType:
              if (command->name != nullptr) changed_columns_.emplace_back(command->name);
              break;
            default:
              break;
          }
        }
        break;
      }
      case T_AlterPolicyStmt:
        names_altered_table_ = true;
        altered_relid_ = RangeVarGetRelid(reinterpret_cast<AlterPolicyStmt *>(tree)->table, NoLock, true);
        break;
      case T_RenameStmt: {
        auto *rename = reinterpret_cast<RenameStmt *>(tree);
        if (rename->renameType == OBJECT_SCHEMA) {
          renamed_schema_ = rename->newname;
        } else if (rename->relation != nullptr) {
          names_altered_table_ = true;
          altered_relid_ = RangeVarGetRelid(rename->relation, NoLock, true);  // renamed away: nothing to check
          if (rename->renameType == OBJECT_COLUMN && rename->subname != nullptr)
            changed_columns_.emplace_back(rename->subname);
        }
        break;
      }
      case T_AlterObjectSchemaStmt: {
        auto *move = reinterpret_cast<AlterObjectSchemaStmt *>(tree);
        // ALTER TABLE IF EXISTS ... SET SCHEMA of a missing table (and schema) is a NOTICE in
        // PostgreSQL: a missing schema means nothing moved, never an error of the door.
        if (move->objectType == OBJECT_TABLE && move->relation != nullptr) {
          const Oid schema = get_namespace_oid(move->newschema, true);
          moved_relid_ = OidIsValid(schema) ? get_relname_relid(move->relation->relname, schema) : InvalidOid;
        }
        break;
      }
      case T_RuleStmt:
        rule_relid_ = RangeVarGetRelid(reinterpret_cast<RuleStmt *>(tree)->relation, NoLock, true);
        break;
      case T_CreateTrigStmt:
        trigger_relid_ = RangeVarGetRelid(reinterpret_cast<CreateTrigStmt *>(tree)->relation, NoLock, true);
        break;
      default:
        break;
    }
  });
}

spi::Session &Event::Spi() {
  if (!spi_) {
    pinned_.emplace();
    spi_.emplace();
  }
  return *spi_;
}

Oid Event::Owner() {
  if (!OidIsValid(owner_)) owner_ = catalog::ExtensionOwner();
  return owner_;
}

const std::vector<Command> &Event::Commands() {
  if (commands_) return *commands_;
  auto rows = Spi().Query(R"SQL(
SELECT c.command_tag, c.object_type, c.classid, c.objid, c.in_extension,
       CASE WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass THEN c.objid
            WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
            THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) c.objid)
       END
  FROM pg_catalog.pg_event_trigger_ddl_commands() c
)SQL");
  commands_.emplace();
  for (const auto &r : rows)
    commands_->push_back({r.at(0).value_or(""), r.at(1).value_or(""), spi::ToOid(r.at(2)), spi::ToOid(r.at(3)),
                          r.at(5) ? spi::ToOid(r.at(5)) : InvalidOid, r.at(4) == "t"});
  return *commands_;
}

const std::vector<DroppedObject> &Event::DroppedObjects() {
  if (dropped_) return *dropped_;
  auto rows = Spi().Query(R"SQL(
SELECT d.classid, d.objid, d.objsubid, d.object_type, d.address_names[1], d.address_names[2]
  FROM pg_catalog.pg_event_trigger_dropped_objects() d
)SQL");
  dropped_.emplace();
  for (const auto &r : rows)
    dropped_->push_back({spi::ToOid(r.at(0)), spi::ToOid(r.at(1)), static_cast<int32>(std::stol(r.at(2).value_or("0"))),
                         r.at(3).value_or(""), r.at(4).value_or(""), r.at(5).value_or("")});
  return *dropped_;
}

std::vector<Oid> Event::TouchedTables() {
  std::vector<Oid> tables;
  for (const auto &c : Commands())
    if (c.classid == RelationRelationId) tables.push_back(c.objid);
  std::sort(tables.begin(), tables.end());
  tables.erase(std::unique(tables.begin(), tables.end()), tables.end());
  return tables;
}

void Event::Finish() {
  if (spi_) spi_->Finish();
  spi_.reset();
  pinned_.reset();
}

}  // namespace pg_tenant::ddl
