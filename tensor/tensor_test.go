package tensor

import (
	"math"
	"testing"
)

func TestReshapeInfersAndShares(t *testing.T) {
	a := New(2, 3, 4)
	v, err := a.Reshape(-1, 4)
	if err != nil || !SameShape(v.Shape, []int{6, 4}) {
		t.Fatalf("reshape: %v %v", v, err)
	}
	v.Data[5] = 7
	if a.Data[5] != 7 {
		t.Fatal("reshape does not share data")
	}
	for _, bad := range [][]int{{5, -1}, {-1, -1}, {25}, {-2, 12}} {
		if _, err := a.Reshape(bad...); err == nil {
			t.Errorf("reshape %v of 24 elements accepted", bad)
		}
	}
}

func TestFromDataCloneAndHelpers(t *testing.T) {
	if _, err := FromData(make([]float32, 5), 2, 3); err == nil {
		t.Fatal("length mismatch accepted")
	}
	a := MustFromData([]float32{1, -3, 2, 0.5}, 2, 2)
	b := a.Clone()
	b.Data[0] = 9
	if a.Data[0] != 1 {
		t.Fatal("clone shares data")
	}
	if a.MaxAbs() != 3 || a.Sum() != 0.5 || a.HasNaN() {
		t.Fatalf("MaxAbs %v Sum %v HasNaN %v", a.MaxAbs(), a.Sum(), a.HasNaN())
	}
	a.Data[1] = float32(math.Inf(1))
	if !a.HasNaN() {
		t.Fatal("Inf not detected")
	}
	if err := b.CopyFrom(New(3)); err == nil {
		t.Fatal("copy with mismatched size accepted")
	}
	if Numel(nil) != 1 || Numel([]int{2, 0}) != 0 {
		t.Fatal("Numel")
	}
}
