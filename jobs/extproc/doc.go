// Package extproc runs an external process that answers requests over a
// JSON-lines protocol on its stdin and stdout. It is the transport of the
// exec: environments of rollout and the exec: judges of reward: the stage
// starts the command once per stage call (Start), sends many requests
// concurrently (Call), and shuts it down at the end (Close).
//
// # Protocol
//
// The command runs with sh -c in the job file's folder. rljob writes one
// request per line to its stdin and reads one response per line from its
// stdout; stderr is free for diagnostics (its last lines are quoted in
// errors).
//
//	request:  {"id": 7, "kind": "judge", "payload": {...}}
//	response: {"id": 7, "result": {...}}
//	      or  {"id": 7, "error": "what went wrong"}
//
// id is an integer, unique within the process's lifetime; the response
// echoes it. kind says what the payload is ("judge", "reset", "step", ...:
// the caller's protocol on top of this one). Responses may come in any
// order, so a process may work on several requests at once; up to
// Config.Concurrency requests are in flight. A process that answers one
// line at a time still works, but then one slow request delays the ones
// behind it. An "error" response fails that request only. When stdin
// closes the process should exit (status 0).
//
// # Failures
//
// Every error is an *Error naming the command and the request's label
// (e.g. "episode 3, turn 2" or "rollout_id r-1"):
//
//   - Timeout: no response within Config.Timeout. The call returns; the
//     process keeps running, and its late response is dropped.
//   - Remote: the response carried "error".
//   - Protocol: a stdout line that is not a JSON object with an integer id,
//     an id never sent or answered twice, or a response with neither result
//     nor error. The process cannot be trusted after that: it is killed and
//     every pending and later call fails with this error.
//   - Crash: the process exited (or closed its stdout) while requests were
//     pending or before Close; the error says how it ended and quotes the
//     tail of its stderr. Later calls fail with it too.
package extproc
