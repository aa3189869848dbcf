package jobs

import (
	"context"
	"fmt"
)

// ExplainNoRows says, when it can tell from this step's views, why a stage
// that trains on this step's rollouts got no rows: no rollouts this step,
// rollouts without rewards, or only groups whose rewards are all equal
// (group_std = 0: all correct or all wrong, which a group_std > 0 filter
// drops); else that the data query selected none of this step's rows.
func (sc *StageCtx) ExplainNoRows(ctx context.Context) string {
	if sc.Engine == nil {
		return "the data query selected no row"
	}
	conn := sc.Engine.Conn()
	var rollouts, rewards int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM this_step_rollouts WHERE tag = 'train'`).Scan(&rollouts); err != nil || rollouts == 0 {
		return fmt.Sprintf("step %d has no train rollouts (before this call): did rollout run, and did its prompts query select any prompt?", sc.Step)
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM this_step_scored WHERE tag = 'train'`).Scan(&rewards); err != nil || rewards == 0 {
		return fmt.Sprintf("step %d has %d train rollouts but none has a reward: call reward before train", sc.Step, rollouts)
	}
	var groups, flat, allRight, allWrong int64
	err := conn.QueryRowContext(ctx, `SELECT count(*), count_if(sd = 0), count_if(sd = 0 AND r), count_if(sd = 0 AND NOT r)
		FROM (SELECT prompt_id, coalesce(stddev_pop(reward), 0) AS sd, bool_and(coalesce(correct, false)) AS r
		      FROM this_step_scored WHERE tag = 'train' GROUP BY ALL)`).Scan(&groups, &flat, &allRight, &allWrong)
	if err != nil {
		return "the data query selected no row"
	}
	if flat == groups {
		return fmt.Sprintf("all %d groups of step %d have group_std = 0 (%d all correct, %d all wrong), so a group_std > 0 filter drops every row: "+
			"more samples per prompt (n), harder or easier prompts, or keep the equal groups (their GRPO advantage is 0)", groups, sc.Step, allRight, allWrong)
	}
	return fmt.Sprintf("step %d has %d scored train rollouts in %d groups (%d with group_std > 0), and the data query selected none of them", sc.Step, rewards, groups, groups-flat)
}
