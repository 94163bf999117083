package recovery

// LegacyGossip returns o with the gossip path set to behave as it did
// before holders' offers were used: it waits one gossipsub heartbeat before
// publishing, opens one blob at a time, and stops only after the quiet
// period. BenchmarkRecoverWithoutChain measures it next to the default.
func LegacyGossip(o Options) Options {
	o.legacyGossip = true
	return o
}
