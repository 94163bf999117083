//go:build ksb_testhooks

package node

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

// testHooks is true in builds with the ksb_testhooks tag: the admin
// endpoint then serves POST /debug/drop-copy, which process tests use to
// make a running holder lose a copy. Never ship such a build.
const testHooks = true

// debugRoutes adds the test hooks to the admin endpoint:
//
//	POST /debug/drop-copy?commitment=C&slot=S[&silent=1]
//
// runs n.DropCopy: 204 when dropped, 404 when the copy is not held, 400 for
// bad arguments. The admin endpoint answers loopback hosts only.
func (n *Node) debugRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /debug/drop-copy", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c, err1 := strconv.ParseUint(q.Get("commitment"), 10, 64)
		s, err2 := strconv.ParseUint(q.Get("slot"), 10, 8)
		if err1 != nil || err2 != nil {
			http.Error(w, "want commitment=C&slot=S", http.StatusBadRequest)
			return
		}
		err := n.DropCopy(custody.CustodyID{Commitment: c, Slot: s}, q.Get("silent") == "1")
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
}
