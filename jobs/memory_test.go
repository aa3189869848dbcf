package jobs

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"16GiB": 16 << 30, "16G": 16 << 30, "1.5GB": 1_500_000_000, "512MiB": 512 << 20, "4096": 4096, " 2 TiB ": 2 << 40, "8kb": 8000} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "0", "16XB", "1e400G"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

// TestTrainBudget: --memory replaces the machine's figure in both budgets.
func TestTrainBudget(t *testing.T) {
	SetMemoryBudget(3 << 30)
	defer SetMemoryBudget(0)
	if MemoryBudget() != 3<<30 || TrainBudget() != 3<<30 {
		t.Errorf("budgets %d, %d with --memory 3GiB", MemoryBudget(), TrainBudget())
	}
	SetMemoryBudget(0)
	tb, m := float64(TrainBudget()), float64(MemoryBudget()) // MemAvailable moves a little between reads
	if m > 0 && (tb < 0.7*m || tb > 0.8*m) {
		t.Errorf("default train budget %.0f, machine's %.0f: want 3/4", tb, m)
	}
}
