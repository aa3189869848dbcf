#!/bin/sh
# The static shared memory of each CUDA kernel, from the emulator's objects
# (make cuda-emu-lib puts every __shared__ variable in the section
# rjemu_shared, named after its kernel): prints each kernel's bytes and
# fails when one is over the 48 KiB a block may declare statically.
# Usage: cuda-shared-mem.sh OBJ.o...
set -eu
sizes=$(for f in "$@"; do objdump -t "$f"; done |
	awk '$4 == "rjemu_shared" && $6 != "rjemu_shared" { print $5, $6 }' | c++filt | awk '
	{ size = 0; h = $1
	  for (i = 1; i <= length(h); i++) size = size * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
	  name = $0; sub(/^[0-9a-f]+ /, "", name); sub(/\(.*/, "", name)
	  bytes[name] += size }
	END { for (k in bytes) printf "%-24s %6d\n", k, bytes[k] }' | sort)
[ -n "$sizes" ] || { echo "cuda-shared-mem.sh: no __shared__ variable found in $*" >&2; exit 1; }
echo "static shared memory per kernel (bytes; the limit is 49152):"
echo "$sizes"
echo "$sizes" | awk '$2 > 49152 { print "cuda-shared-mem.sh: " $1 " declares " $2 " bytes of static shared memory, over 48 KiB" > "/dev/stderr"; bad = 1 } END { exit bad }'
