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
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# Every script ever released, and the upgrade to this version; a released one is never edited.
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

$(DATA_built): $(CAPABILITY_SQL) $(EXTENSION).control Makefile
	cat $(CAPABILITY_SQL) > $@
