//go:build !linux

package netproc

import "os/exec"

// setParentDeathSignal does nothing here: only Linux kills a child when
// its parent dies. Callers kill the commands they start.
func setParentDeathSignal(*exec.Cmd) {}
