package runtime

// SwapDelegate registers d under its name for a test (or removes the
// registration when d.Open is nil) and returns what restores the previous
// state.
func SwapDelegate(name string, d Delegate) (restore func()) {
	delegatesMu.Lock()
	defer delegatesMu.Unlock()
	old, had := delegates[name]
	if d.Open == nil {
		delete(delegates, name)
	} else {
		delegates[name] = d
	}
	return func() {
		delegatesMu.Lock()
		defer delegatesMu.Unlock()
		if had {
			delegates[name] = old
		} else {
			delete(delegates, name)
		}
	}
}
