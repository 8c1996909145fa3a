package kernels

import "testing"

// testImpls lists the implementations this CPU can run.
func testImpls() []string { return Impls() }

// useImpl switches to impl for one test and returns the restore func.
func useImpl(t *testing.T, name string) func() {
	t.Helper()
	prev := Impl()
	if err := SetImpl(name); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := SetImpl(prev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetImpl(t *testing.T) {
	if err := SetImpl("no-such-isa"); err == nil {
		t.Fatal("SetImpl accepted an unknown name")
	}
	for _, name := range Impls() {
		restore := useImpl(t, name)
		if Impl() != name {
			t.Fatalf("Impl() = %q after SetImpl(%q)", Impl(), name)
		}
		restore()
	}
	if Impls()[0] != "generic" {
		t.Fatalf("Impls()[0] = %q, want generic", Impls()[0])
	}
}

func TestImplFor(t *testing.T) {
	best := Impls()[len(Impls())-1]
	for env, want := range map[string]string{"": best, "generic": "generic", "no-such-isa": best, best: best} {
		if got := implFor(env).name; got != want {
			t.Errorf("LOWBIT_KERNELS=%q selects %q, want %q", env, got, want)
		}
	}
}
