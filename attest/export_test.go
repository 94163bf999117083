package attest

import "strings"

// StateKeys counts the keys of the last committed state, by the first
// component after "s/" (for the retention test).
func (a *App) StateKeys() (map[string]int, error) {
	out := map[string]int{}
	err := a.view(func(s kv) error {
		return s.scan(prefState, func(key string, _ []byte) error {
			kind, _, _ := strings.Cut(strings.TrimPrefix(key, prefState), "/")
			out[kind]++
			return nil
		})
	})
	return out, err
}
