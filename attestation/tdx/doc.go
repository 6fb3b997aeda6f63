package tdx

import (
	_ "github.com/google/go-configfs-tsm/configfs/faketsm"
	_ "github.com/google/go-configfs-tsm/configfs/linuxtsm"
	_ "github.com/google/go-configfs-tsm/report"
	_ "github.com/google/go-tdx-guest/abi"
	_ "github.com/google/go-tdx-guest/client"
	_ "github.com/google/go-tdx-guest/pcs"
	_ "github.com/google/go-tdx-guest/testing"
	_ "github.com/google/go-tdx-guest/verify"
	_ "github.com/google/go-tdx-guest/verify/trust"
)
