//go:build unix

package netproc

import "syscall"

// Stop pauses the process (SIGSTOP): it keeps its sockets open and
// answers nothing until Continue.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGSTOP) }

// Continue resumes a process paused by Stop (SIGCONT).
func (p *Proc) Continue() error { return p.Signal(syscall.SIGCONT) }
