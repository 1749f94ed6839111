# PGXS build: make, make install, make installcheck (pg_regress; needs a running server).
EXTENSION = pg_tenant
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = pg_tenant
SOURCES := $(shell awk '!/^\#/ && NF {print $$1}' src/SOURCES)
OBJS = $(SOURCES:.cpp=.o)

# Every install and upgrade script ever shipped; never edit a shipped one.
DATA = $(wildcard extension/$(EXTENSION)--*.sql)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql

PG_CONFIG ?= pg_config
PG_CXXFLAGS += -std=c++17 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Isrc
PG_CPPFLAGS += -Isrc
SHLIB_LINK += -lstdc++ -lhiredis

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The server headers are C; keep their warnings out of ours.
override CPPFLAGS := $(patsubst -I%server,-isystem %server,$(CPPFLAGS))
# The LLVM bitcode build must see the same C++ flags.
COMPILE.cxx.bc += $(PG_CXXFLAGS)
