// One event of the DDL door (src/ddl/ddl.cpp): what PostgreSQL passed to the event trigger, and
// what pg_event_trigger_ddl_commands() / pg_event_trigger_dropped_objects() say, each read at
// most once and only when a step needs it. Steps take what they need from here. A floor of its
// own (below every capability whose door steps take it; ddl/ keeps only the dispatcher).
#pragma once

#include "bridge/spi.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pg_tenant::ddl {

// One row of pg_event_trigger_ddl_commands().
struct Command {
  std::string tag;          // command_tag
  std::string object_type;  // object_type
  Oid classid;
  Oid objid;
  Oid relid;  // the table: objid for a pg_class object, the policy's table for a pg_policy one
  bool in_extension;
};

// One row of pg_event_trigger_dropped_objects().
struct DroppedObject {
  Oid classid;
  Oid objid;
  int32 objsubid;
  std::string object_type;
  std::string schema;  // address_names[1]
  std::string name;    // address_names[2]: the table of a policy, constraint or column
};

class Event {
 public:
  // Checks that fcinfo is an event trigger call and resolves the relations the parse tree names
  // now, with the caller's search_path (the steps' own SQL runs with it pinned).
  explicit Event(FunctionCallInfo fcinfo);
  Event(const Event &) = delete;
  Event &operator=(const Event &) = delete;

  CommandTag tag() const { return data_->tag; }
  Node *parsetree() const { return data_->parsetree; }
  bool IsDrop() const { return is_drop_; }
  // CREATE TABLE [AS] / SELECT INTO: the table created, found where the command created it.
  Oid created_relid() const { return created_relid_; }
  // CREATE TABLE ... INHERITS / PARTITION OF: the new table names a parent.
  bool creates_child() const { return creates_child_; }
  // ALTER TABLE, ALTER POLICY, RENAME: the table named (InvalidOid when renamed away or absent).
  Oid altered_relid() const { return altered_relid_; }
  // ALTER TABLE with ATTACH PARTITION or INHERIT: a parent-child link was made.
  bool links_child() const { return links_child_; }
  // The statement is ALTER TABLE, ALTER POLICY or RENAME (altered_relid says which table).
  bool names_altered_table() const { return names_altered_table_; }
  // Parent-child links the statement made (ATTACH PARTITION, INHERIT): (parent, child).
  const std::vector<std::pair<Oid, Oid>> &linked() const { return linked_; }
  // Tables that left their parent (DETACH PARTITION, NO INHERIT).
  const std::vector<Oid> &unlinked() const { return unlinked_; }
  // Columns of altered_relid the statement dropped, renamed (by their old name) or retyped.
  const std::vector<std::string> &changed_columns() const { return changed_columns_; }
  // ALTER TABLE ... SET SCHEMA: the table, in its new schema.
  Oid moved_relid() const { return moved_relid_; }
  // ALTER SCHEMA ... RENAME TO: the new name (empty otherwise).
  const std::string &renamed_schema() const { return renamed_schema_; }
  // CREATE RULE: the table the rule is on.
  Oid rule_relid() const { return rule_relid_; }
  // CREATE [OR REPLACE] [CONSTRAINT] TRIGGER: the table the trigger is on.
  Oid trigger_relid() const { return trigger_relid_; }

  // SPI for the steps' SQL, with search_path pinned to pg_catalog, pg_temp; opened on first use.
  spi::Session &Spi();
  // The extension's owner, as whom the steps read and write the extension's tables.
  Oid Owner();
  const std::vector<Command> &Commands();
  const std::vector<DroppedObject> &DroppedObjects();
  // The distinct tables the commands touched (pg_class objects only), in OID order.
  std::vector<Oid> TouchedTables();

  // Closes SPI and the pinned search_path: called by the door after the last step.
  void Finish();

 private:
  EventTriggerData *data_;
  bool is_drop_;
  Oid created_relid_ = InvalidOid;
  bool creates_child_ = false;
  Oid altered_relid_ = InvalidOid;
  bool links_child_ = false;
  bool names_altered_table_ = false;
  std::vector<std::pair<Oid, Oid>> linked_;
  std::vector<Oid> unlinked_;
  std::vector<std::string> changed_columns_;
  Oid moved_relid_ = InvalidOid;
  std::string renamed_schema_;
  Oid rule_relid_ = InvalidOid;
  Oid trigger_relid_ = InvalidOid;
  std::optional<spi::PinnedSearchPath> pinned_;
  std::optional<spi::Session> spi_;
  Oid owner_ = InvalidOid;
  std::optional<std::vector<Command>> commands_;
  std::optional<std::vector<DroppedObject>> dropped_;
};

}  // namespace pg_tenant::ddl
