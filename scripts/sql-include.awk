# The SQL build's one preprocessor step (Makefile; ARCHITECTURE.md, "Build"): a line
#   --#include <path under src/>
# is replaced by that file's text. One level: an included file includes nothing. A file that
# cannot be read fails the build.
/^--#include / {
  file = "src/" $2
  while ((status = (getline line < file)) > 0) {
    if (line ~ /^--#include /) { print FILENAME ": " file " includes again (one level only)" > "/dev/stderr"; exit 1 }
    print line
  }
  if (status < 0) { print FILENAME ": cannot read " file > "/dev/stderr"; exit 1 }
  close(file)
  next
}
{ print }
