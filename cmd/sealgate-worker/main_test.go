package main

import (
	"os"
	"strings"
	"testing"
)

func TestRunRefusesBadTEE(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no tee", []string{"-gateway", "http://127.0.0.1:1", "-id", "w"}, `-tee: found ""`},
		{"unknown tee", []string{"-tee", "sgx9", "-gateway", "http://127.0.0.1:1", "-id", "w"}, `found "sgx9"`},
		{"sim without the insecure flag", []string{"-tee", "sim", "-gateway", "http://127.0.0.1:1", "-id", "w"}, "-insecure-simulated-tee"},
		{"gpus without nvml", []string{"-tee", "sim", "-insecure-simulated-tee", "-gpus", "-gateway", "http://127.0.0.1:1", "-id", "w"}, gpusWant},
		{"tdx without configfs-tsm", []string{"-tee", "tdx", "-gateway", "http://127.0.0.1:1", "-id", "w"}, "configfs-tsm"},
		{"snp without configfs-tsm", []string{"-tee", "snp", "-gateway", "http://127.0.0.1:1", "-id", "w"}, "configfs-tsm"},
	}
	if _, err := os.Stat("/sys/kernel/config/tsm"); err == nil {
		tests = tests[:3] // inside a confidential VM the hardware sources open
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
