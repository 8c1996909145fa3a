package qat

import (
	"math"
	"math/rand"
	"reflect"
	"testing"

	"lowbit/tensor"
)

// gaussianKL is KL(N(μn,σn²) ‖ N(μo,σo²)) in closed form.
func gaussianKL(mn, sn, mo, so float64) float64 {
	return math.Log(so/sn) + (sn*sn+(mn-mo)*(mn-mo))/(2*so*so) - 0.5
}

func TestAIWQMatchesClosedForm(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	cur, old := tensor.New(4, 2, 5, 5), tensor.New(4, 2, 5, 5)
	cur.RandNormal(rng, 1)
	copy(old.Data, cur.Data)
	// Channel 1 of old: scaled by 2 and shifted by 0.5.
	for n := 0; n < 4; n++ {
		for i := 0; i < 25; i++ {
			j := (n*2+1)*25 + i
			old.Data[j] = 2*cur.Data[j] + 0.5
		}
	}
	v, ok, err := AIWQ(cur, old)
	if err != nil || !ok {
		t.Fatal(err, ok)
	}
	mn, sn := channelStats(cur.Data, 4, 2, 25, 1)
	want := gaussianKL(mn, sn, 2*mn+0.5, 2*sn) / 2 // channel 0 contributes 0
	if math.Abs(v-want) > 1e-9 {
		t.Fatalf("AIWQ %v, want %v", v, want)
	}
	same, _, _ := AIWQ(cur, cur)
	if math.Abs(same) > 1e-12 {
		t.Fatalf("AIWQ of identical outputs = %v, want 0", same)
	}
	if _, _, err := AIWQ(cur, tensor.New(4, 2, 5)); err == nil {
		t.Fatal("shape mismatch accepted")
	}
	zero := tensor.New(1, 3, 2, 2)
	if _, ok, _ := AIWQ(zero, zero); ok {
		t.Fatal("constant outputs must give no value")
	}
}

func TestTrackerAndStages(t *testing.T) {
	tr := NewAIWQTracker()
	tr.Add("a", 0.5)
	tr.Add("b", 0.9)
	tr.Add("c", 2) // skipped: > 1
	tr.Add("c", 0.1)
	tr.Add("d", 0.3)
	if math.Abs(tr.M["a"]-0.0005) > 1e-12 || tr.Count["c"] != 1 {
		t.Fatalf("tracker %v %v", tr.M, tr.Count)
	}
	order := tr.Order()
	if !reflect.DeepEqual(order, []string{"b", "a", "d", "c"}) {
		t.Fatalf("order %v", order)
	}
	st := ProfitStages(order)
	if len(st[0]) != 0 || !reflect.DeepEqual(st[1], []string{"b", "a"}) || !reflect.DeepEqual(st[2], []string{"b", "a", "d"}) {
		t.Fatalf("stages %v", st)
	}
	st = ProfitStages([]string{"x", "y", "z", "u", "v", "w"})
	if len(st[1]) != 2 || len(st[2]) != 4 {
		t.Fatalf("6 layers: stages %v", st)
	}
}
