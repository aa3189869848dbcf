#!/bin/sh
# A deterministic environment for tests of env := 'exec:sh env.sh', in sh
# alone: it answers turn N of an episode with the observation " obsN"
# (reward N) and ends the episode after turn 2. Turn texts that test
# failures: stall (answers after 10 s, in the background), crash (exits 3),
# garbage (a non-JSON line). Test strings hold no quotes or backslashes.
while IFS= read -r line; do
	id=${line#*\"id\":}; id=${id%%,*}
	turn=${line#*\"turn\":}; turn=${turn%%,*}
	text=${line#*\"text\":\"}; text=${text%%\"*}
	case "$text" in
	stall) (sleep 10; printf '{"id":%s,"result":{}}\n' "$id") & ;;
	crash) echo "env: lost my state" >&2; exit 3 ;;
	garbage) echo "turn $turn" ;;
	*)
		done=false; [ "$turn" -ge 2 ] && done=true
		printf '{"id":%s,"result":{"observation":" obs%s","reward":%s,"done":%s}}\n' "$id" "$turn" "$turn" "$done" ;;
	esac
done
