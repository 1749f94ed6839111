# PGXS build: make, make install, make installcheck (pg_regress; needs a running server).
EXTENSION = pg_tenant
EXTVERSION = $(shell sed -nE "s/^default_version *= *'([^']+)'/\1/p" $(EXTENSION).control)

MODULE_big = pg_tenant
SOURCES := $(shell awk '!/^\#/ && NF {print $$1}' src/SOURCES)
OBJS = $(SOURCES:.cpp=.o)

# The install script of the current version is built from the capabilities' SQL, in this order
# (a capability's objects may use those of the capabilities before it). ARCHITECTURE.md says why.
CAPABILITIES = registry context features limits policy guard citus audit quotas meters usage stats lifecycle ddl
CAPABILITY_SQL = src/$(EXTENSION).sql $(foreach c,$(CAPABILITIES),src/$(c)/$(c).sql)
# An object that changes across versions is one file per version, objects/<name>/<version>.sql,
# included by a line "--#include <path under src/>" (scripts/sql-include.awk).
SQL_OBJECTS = $(wildcard src/*/objects/*/*.sql)
# The upgrade to this version, built the same way from src/upgrade/<previous>--<version>.sql.
UPGRADE_SQL = $(wildcard src/upgrade/*--$(EXTVERSION).sql)
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(patsubst src/upgrade/%,$(EXTENSION)--%,$(UPGRADE_SQL))
# Every script ever released; a released one is never edited (extension/released.sha256).
DATA = $(wildcard extension/$(EXTENSION)--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql

PG_CONFIG ?= pg_config
PG_CXXFLAGS += -std=c++17 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Isrc
PG_CPPFLAGS += -Isrc
SHLIB_LINK += -lstdc++ -lhiredis
EXTRA_CLEAN = $(OBJS:.o=.d)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The server headers are C; keep their warnings out of ours.
override CPPFLAGS := $(patsubst -I%server,-isystem %server,$(CPPFLAGS))
# The LLVM bitcode build must see the same C++ flags.
COMPILE.cxx.bc += $(PG_CXXFLAGS)
# Header dependencies: each object's .d file lists the headers it included (not the bitcode
# build's flags: it would write the same .d).
override CXXFLAGS += -MMD -MP
-include $(OBJS:.o=.d)

$(EXTENSION)--$(EXTVERSION).sql: $(CAPABILITY_SQL) $(SQL_OBJECTS) scripts/sql-include.awk $(EXTENSION).control Makefile
	awk -f scripts/sql-include.awk $(CAPABILITY_SQL) > $@.tmp && mv $@.tmp $@
$(EXTENSION)--%--$(EXTVERSION).sql: src/upgrade/%--$(EXTVERSION).sql $(SQL_OBJECTS) scripts/sql-include.awk Makefile
	awk -f scripts/sql-include.awk $< > $@.tmp && mv $@.tmp $@
