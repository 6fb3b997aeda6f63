package sim

import (
	"crypto/sha512"
	"io"
	"os"
)

// MeasureExecutable returns the SHA-384 of the running binary: the
// measurement a simulated device reports for a worker, standing in for the
// MRTD or SNP MEASUREMENT of a real guest.
func MeasureExecutable() ([MeasurementSize]byte, error) {
	var m [MeasurementSize]byte
	path, err := os.Executable()
	if err != nil {
		return m, err
	}
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return m, err
	}
	copy(m[:], h.Sum(nil))
	return m, nil
}
