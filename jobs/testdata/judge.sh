#!/bin/sh
# A deterministic judge for tests of reward(verifier := 'exec:sh judge.sh'):
# it speaks the JSON-lines protocol of docs/rewards.md with nothing but sh.
# Reward 1 (correct) when the completion equals the answer, else 0.25
# (not correct). Completions that test failures: stall (answers after
# 10 s, in the background), crash (exits 3), garbage (a non-JSON line),
# refuse (an "error" answer). Test strings hold no quotes or backslashes.
while IFS= read -r line; do
	id=${line#*\"id\":}; id=${id%%,*}
	comp=${line#*\"completion\":\"}; comp=${comp%%\"*}
	ans=${line#*\"answer\":\"}; ans=${ans%%\"*}
	case "$comp" in
	stall) (sleep 10; printf '{"id":%s,"result":{"reward":1}}\n' "$id") & ;;
	crash) echo "judge: cannot parse $comp" >&2; exit 3 ;;
	garbage) echo "looking at $comp" ;;
	refuse) printf '{"id":%s,"error":"cannot judge %s"}\n' "$id" "$comp" ;;
	*)
		if [ "$comp" = "$ans" ]; then r=1 c=true; else r=0.25 c=false; fi
		printf '{"id":%s,"result":{"reward":%s,"correct":%s,"extracted":"%s"}}\n' "$id" "$r" "$c" "$comp" ;;
	esac
done
