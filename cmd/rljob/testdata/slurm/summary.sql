-- rljob slurm test pipeline, file 3: how many rewards the run has.
CALL log_metrics(query := 'SELECT ''rewards'' AS name, count(*)::DOUBLE AS value FROM rewards WHERE run = getvariable(''run'')');
