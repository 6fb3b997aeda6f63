package tdx

import "github.com/google/go-tdx-guest/verify/trust"

// OfflineGetter exposes the getter Verify feeds go-tdx-guest, for the
// library baseline benchmark.
func OfflineGetter(collateral []byte) (trust.HTTPSGetter, error) {
	c, err := ParseCollateral(collateral)
	if err != nil {
		return nil, err
	}
	d, err := decodeCollateral(c)
	if err != nil {
		return nil, err
	}
	return d.getter(), nil
}
