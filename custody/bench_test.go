package custody_test

import (
	"testing"

	"github.com/ksb-project/ksb/custody"
)

func BenchmarkProve(b *testing.B) {
	copies := sealedCopies(b, "ecdsa")
	o := newOwner(b, copies)
	path := o.path(b, 1)
	for b.Loop() {
		if _, err := custody.ProveHeld(copies[1], 1, 3, path, 100); err != nil {
			b.Fatal(err)
		}
	}
}
