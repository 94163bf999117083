//go:build !ksb_testhooks

package node

import "net/http"

// testHooks is false in every real build: the admin endpoint serves no
// debug route.
const testHooks = false

func (n *Node) debugRoutes(*http.ServeMux) {}
