#!/bin/sh
# Prints the Go build tags for this machine: duckdb_arrow always, openblas
# when OpenBLAS's cblas.h and library are installed (libopenblas-dev).
tags=duckdb_arrow
for h in /usr/include/x86_64-linux-gnu/cblas.h /usr/include/aarch64-linux-gnu/cblas.h /usr/include/openblas/cblas.h /usr/include/cblas.h; do
	if [ -f "$h" ]; then tags="$tags,openblas"; break; fi
done
echo "$tags"
