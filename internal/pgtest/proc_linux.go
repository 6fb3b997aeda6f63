package pgtest

import "syscall"

// sysProcAttr runs a process as acct (nil: as us).
func sysProcAttr(acct *account) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{}
	if acct != nil {
		attr.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid}
	}
	return attr, nil
}

// setParentDeathSignal has the kernel send sig to the process when the
// thread that started it ends. Go sets it after switching credentials, so
// it survives the switch.
func setParentDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}
