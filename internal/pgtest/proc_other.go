//go:build !linux

package pgtest

import (
	"errors"
	"syscall"
)

// sysProcAttr runs a process as us; switching accounts is implemented on
// Linux only.
func sysProcAttr(acct *account) (*syscall.SysProcAttr, error) {
	if acct != nil {
		return nil, errors.New("pgtest: running PostgreSQL as another account is implemented on Linux only; run the tests as a non-root user")
	}
	return &syscall.SysProcAttr{}, nil
}

// setParentDeathSignal does nothing here: without Linux's parent-death
// signal, a test binary killed before Main returns leaves its server
// running.
func setParentDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}
