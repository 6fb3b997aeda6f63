//go:build !linux

package faulttest

import "os/exec"

// setParentDeathSignal does nothing here: only Linux kills a child when
// its parent dies. The tests' cleanups kill the commands they start.
func setParentDeathSignal(*exec.Cmd) {}
