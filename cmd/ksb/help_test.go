package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// White-box: the help texts are walked through the command tree itself.

// valueName is what a flag's value may be called in help: pflag's type
// names, or an upper-case placeholder given in back-quotes (`DIR`).
var valueName = regexp.MustCompile(`^([A-Z][A-Z0-9_:]*|string|strings|stringArray|int|uint|uint32|uint64|duration|)$`)

// TestHelpTexts is issue 9 item 7: cobra turns the first back-quoted phrase
// of a flag's usage into the flag's value name ("--vault ksb inspect"), so
// every flag of every command must name its value with a type or an
// upper-case placeholder; and every command has a summary and renders its
// help.
func TestHelpTexts(t *testing.T) {
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		seen++
		path := c.CommandPath()
		if c.Short == "" {
			t.Errorf("%s: no short description", path)
		}
		check := func(f *pflag.Flag) {
			name, usage := pflag.UnquoteUsage(f)
			if !valueName.MatchString(name) {
				t.Errorf("%s --%s: help shows the value as %q (a back-quoted phrase in its usage)", path, f.Name, name)
			}
			if strings.Contains(usage, "`") {
				t.Errorf("%s --%s: a back-quote is left in the usage %q", path, f.Name, usage)
			}
			if usage == "" {
				t.Errorf("%s --%s: no usage", path, f.Name)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.InheritedFlags().VisitAll(check)
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetErr(&out)
		if err := c.Help(); err != nil {
			t.Errorf("%s --help: %v", path, err)
		}
		if !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%s --help:\n%s", path, out.String())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
	if seen < 15 {
		t.Fatalf("walked %d commands", seen)
	}
}
