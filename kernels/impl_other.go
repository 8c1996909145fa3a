//go:build !amd64

package kernels

// archImpls lists the assembly implementations of this architecture: none
// yet, so other CPUs run the portable Go kernels.
func archImpls() []*impl { return nil }
