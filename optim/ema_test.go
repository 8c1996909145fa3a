package optim

import (
	"reflect"
	"testing"

	"lowbit/graph"
	"lowbit/tensor"
)

func emaGraph() *graph.Graph {
	g := graph.New("ema")
	g.AddParam("w", graph.Weight, tensor.MustFromData([]float32{1, 2}, 2))
	g.AddParam("bn.running_var", graph.BNVar, tensor.MustFromData([]float32{4}, 1))
	g.AddParam("c", graph.Const, tensor.MustFromData([]float32{9}, 1))
	return g
}

func TestEMAMath(t *testing.T) {
	g := emaGraph()
	e := NewEMA(g, 0.5)
	w, v, c := g.Param("w"), g.Param("bn.running_var"), g.Param("c")
	// shadow starts at the initial values; after w → (3, 6), v → 8:
	// shadow = 0.5·init + 0.5·new.
	copy(w.Data.Data, []float32{3, 6})
	v.Data.Data[0] = 8
	e.Update()
	copy(w.Data.Data, []float32{5, 2})
	e.Update() // shadow w = 0.5·(2, 4) + 0.5·(5, 2) = (3.5, 3); v = 0.5·6 + 0.5·8 = 7
	if err := e.Apply(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w.Data.Data, []float32{3.5, 3}) || v.Data.Data[0] != 7 || c.Data.Data[0] != 9 {
		t.Errorf("applied: w %v var %v const %v", w.Data.Data, v.Data.Data, c.Data.Data)
	}
	if err := e.Apply(); err == nil {
		t.Error("double Apply accepted")
	}
	// Update while applied reads the training values, not the shadow.
	e.Update() // w = 0.5·(3.5, 3) + 0.5·(5, 2) = (4.25, 2.5)
	if err := e.Restore(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w.Data.Data, []float32{5, 2}) || v.Data.Data[0] != 8 {
		t.Errorf("restored: w %v var %v", w.Data.Data, v.Data.Data)
	}
	if err := e.Restore(); err == nil {
		t.Error("Restore without Apply accepted")
	}
	st := e.StateDict()
	if !reflect.DeepEqual(st.Names, []string{"w", "bn.running_var"}) || !reflect.DeepEqual(st.Shadow[0], []float32{4.25, 2.5}) || st.Updates != 3 {
		t.Errorf("state %+v", st)
	}

	// Resume: a new EMA loaded from the state continues identically.
	e2 := NewEMA(g, 0.5)
	if err := e2.LoadState(st); err != nil {
		t.Fatal(err)
	}
	e.Update()
	e2.Update()
	if !reflect.DeepEqual(e.StateDict(), e2.StateDict()) {
		t.Errorf("resumed EMA differs: %+v vs %+v", e.StateDict(), e2.StateDict())
	}
	if err := e2.LoadState(EMAState{Names: []string{"c"}, Shadow: [][]float32{{1}}}); err == nil {
		t.Error("EMA state for a constant accepted")
	}
	if err := e2.LoadState(EMAState{Names: []string{"w"}, Shadow: [][]float32{{1}}}); err == nil {
		t.Error("EMA state of the wrong size accepted")
	}
}

func TestEMADefaultsAndNewParams(t *testing.T) {
	g := emaGraph()
	e := NewEMA(g, 0)
	if e.Decay != 0.9997 {
		t.Errorf("default decay %v", e.Decay)
	}
	// A parameter added after NewEMA (quantizer insertion) joins at its value.
	q := g.AddParam("q.scale", graph.QuantParam, tensor.MustFromData([]float32{2}, 1)).Param
	e.Update()
	if err := e.Apply(); err != nil {
		t.Fatal(err)
	}
	if q.Data.Data[0] != 2 {
		t.Errorf("new parameter shadow %v, want 2", q.Data.Data[0])
	}
	if err := e.Restore(); err != nil {
		t.Fatal(err)
	}
	// RampUp: the first update uses min(decay, 1/10).
	r := NewEMA(g, 0.9997)
	r.RampUp = true
	w := g.Param("w")
	copy(w.Data.Data, []float32{11, 2})
	r.Update() // 0.1·1 + 0.9·11 = 10
	if got := r.StateDict().Shadow[0][0]; got < 9.9999 || got > 10.0001 {
		t.Errorf("ramp-up update gives %v, want 10", got)
	}
}
