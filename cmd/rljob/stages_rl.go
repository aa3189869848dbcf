package main

// The RL stages (init_policy, sft, rollout, train) register themselves into
// jobs.DefaultRegistry when their package is linked in.
import _ "github.com/rljob/rljob/jobs/rl"
