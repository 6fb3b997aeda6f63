//go:build linux

package collect

import (
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
)

// kernelTSM returns the kernel's configfs-tsm.
func kernelTSM() (configfsi.Client, error) { return linuxtsm.MakeClient() }
