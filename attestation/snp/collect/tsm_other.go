//go:build !linux

package collect

import (
	"errors"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
)

// kernelTSM fails: configfs-tsm is a Linux interface.
func kernelTSM() (configfsi.Client, error) {
	return nil, errors.New("configfs-tsm is available on Linux only")
}
