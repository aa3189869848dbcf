-- this_step_scored: this step's rollouts joined with this step's rewards —
-- scored restricted to the outputs of the current step's earlier calls.
--
--   this_step_scored = this_step_rollouts JOIN this_step_rewards ON (run, step, rollout_id)
--
-- Same columns, and the same one-verifier rule (train_verifier), as
-- scored. In a job, the lake views (rollouts, rewards, scored,
-- prompt_stats, ...) show the run's history up to the end of the previous
-- step; this step's rows are seen only through the this_step_ views, so a
-- step computes the same thing however often it is rerun. Outside a job
-- (rljob sql) the this_step_ views are empty.
CREATE OR REPLACE VIEW this_step_scored AS
SELECT ro.*, rw.verifier, rw.reward, rw.correct, rw.extracted
FROM this_step_rollouts AS ro
JOIN _one_verifier('this_step_rewards') AS rw
  ON ro.run = rw.run AND ro.step = rw.step AND ro.rollout_id = rw.rollout_id;
