package report

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strings"

	rsql "github.com/rljob/rljob/sql"
)

// trainedScored is the scored rows the reward curve and the curriculum
// count: per run, one verifier's. A run whose train rollouts were scored
// by several verifiers (reward(verifier := ...) called more than once; the
// job names the one that trains with train_verifier, which the lake does
// not record) counts the verifier with the most train rows (ties: the
// first by name), and a note names it and the others, so verifiers never
// mix and the choice is never silent. The samples table shows every
// verifier's rows, labelled.
func trainedScored(ctx context.Context, eng *rsql.Engine, runs []string) (src string, notes []string, err error) {
	q := `SELECT run, list(verifier ORDER BY n DESC, verifier), list(n ORDER BY n DESC, verifier) FROM (
    SELECT run, verifier, count(*) AS n FROM scored_all WHERE run IN ` + runList(runs) + ` AND tag = 'train' GROUP BY run, verifier)
GROUP BY run ORDER BY run`
	var picks []string
	err = query(ctx, eng, "verifiers", q, func(r *stdsql.Rows) error {
		var run string
		var vs, ns []any
		if err := r.Scan(&run, &vs, &ns); err != nil {
			return err
		}
		picks = append(picks, fmt.Sprintf("(run = %s AND verifier = %s)", rsql.QuoteString(run), rsql.QuoteString(fmt.Sprint(vs[0]))))
		if len(vs) > 1 {
			var others []string
			for i := 1; i < len(vs); i++ {
				others = append(others, fmt.Sprintf("'%v' (%v rows)", vs[i], ns[i]))
			}
			notes = append(notes, fmt.Sprintf("run %s: the reward and the curriculum count verifier '%v' (%v train rows); its rewards also hold %s: compare them in rljob sql with scored_all",
				run, vs[0], ns[0], strings.Join(others, ", ")))
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	if len(picks) == 0 {
		picks = []string{"false"}
	}
	return "(SELECT * FROM scored_all WHERE " + strings.Join(picks, " OR ") + ")", notes, nil
}
