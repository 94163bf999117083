package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionDeps are the modules whose versions `ksb --version` reports: the
// implementations of the network, chain, store and encryption.
var versionDeps = []string{
	"github.com/libp2p/go-libp2p",
	"github.com/cometbft/cometbft",
	"github.com/dgraph-io/badger/v4",
	"filippo.io/age",
}

// commit is the VCS commit, for builds the Go toolchain does not stamp
// with one (-buildvcs=false, or a git worktree, whose .git is a file): make
// build sets it with -ldflags "-X main.commit=...".
var commit string

// versionText is what `ksb --version` prints: the module version, the VCS
// commit the binary was built from (with its time, and "modified" for a
// dirty tree), the Go version, and the versions of versionDeps, all from the
// build information the Go toolchain embeds.
func versionText() string {
	var b strings.Builder
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(&b, "ksb (no build information)\ngo       %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return b.String()
	}
	fmt.Fprintf(&b, "ksb %s (%s)\n", bi.Main.Version, bi.Main.Path)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	switch {
	case rev != "":
		if t := settings["vcs.time"]; t != "" {
			rev += " " + t
		}
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
	case commit != "":
		rev = commit
	default:
		rev = "unknown (built without VCS information; make build records it)"
	}
	fmt.Fprintf(&b, "commit   %s\n", rev)
	fmt.Fprintf(&b, "go       %s %s/%s\n", bi.GoVersion, runtime.GOOS, runtime.GOARCH)
	deps := map[string]string{}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v += " => " + d.Replace.Path + " " + d.Replace.Version
		}
		deps[d.Path] = v
	}
	for _, p := range versionDeps {
		v, ok := deps[p]
		if !ok {
			v = "(not linked)"
		}
		fmt.Fprintf(&b, "         %s %s\n", p, v)
	}
	return b.String()
}
