package scenarios

import (
	"os"
	"strconv"
	"testing"

	"github.com/meshfold/meshfold/simulations"
)

func TestDebugOne(t *testing.T) {
	name := os.Getenv("SIM_SCN")
	if name == "" {
		t.Skip()
	}
	seed, _ := strconv.ParseUint(os.Getenv("SIM_SEED"), 10, 64)
	s, _ := Get(name)
	o := s.Shape(s.Nodes)
	o.Scenario, o.Seed = s.Name, seed
	if v, err := strconv.Atoi(os.Getenv("SIM_OPS")); err == nil {
		o.Ops = v
	}
	w, err := simulations.NewWorld(o, simulations.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create("/tmp/simtrace.txt")
	defer f.Close()
	w.Log = f
	if s.Workload != nil {
		s.Workload(w)
	} else {
		w.Workload()
	}
	r := w.Run()
	for _, v := range r.Violations {
		t.Log(v)
	}
}
