// Package testdata opens the datasets that tests train and evaluate on,
// skipping the test when the data is not on this machine.
package testdata

import (
	"testing"

	"lowbit/data"
)

// MNIST returns the first n images of the MNIST split ("train" or
// "test"), or skips t when MNIST is not available.
func MNIST(t testing.TB, split string, n int) *data.Dataset {
	t.Helper()
	ds, err := data.Open("mnist", split)
	if err != nil {
		t.Skipf("MNIST is not available: %v", err)
	}
	return ds.Head(n)
}
